import { AudioEncoding, type AudioChunk } from "../gen/spillway/v1/chunk.js";
import { ffmpegEncode, ffmpegPath, type FfmpegOutputFormat } from "./ffmpeg.js";
import { Mp3StreamEncoder } from "./mp3-encoder.js";
import { DEFAULT_OUTPUT_RATE, toBytes, toSamples } from "./pcm.js";
import { Resampler } from "./resample.js";
import { wavHeader } from "./wav.js";
import { replay } from "./replay.js";

/** The `response_format`s of OpenAI's speech API. */
export const SPEECH_FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"] as const;
/** One of {@link SPEECH_FORMATS}. */
export type SpeechFormat = (typeof SPEECH_FORMATS)[number];

const FFMPEG_FORMATS: ReadonlySet<SpeechFormat> = new Set(["opus", "aac", "flac"]);

const CONTENT_TYPES: Readonly<Record<SpeechFormat, string>> = {
  mp3: "audio/mpeg",
  opus: "audio/ogg; codecs=opus",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

const ENCODINGS: Readonly<Record<SpeechFormat, AudioEncoding>> = {
  mp3: AudioEncoding.AUDIO_ENCODING_MP3,
  opus: AudioEncoding.AUDIO_ENCODING_OPUS,
  aac: AudioEncoding.AUDIO_ENCODING_AAC,
  flac: AudioEncoding.AUDIO_ENCODING_FLAC,
  wav: AudioEncoding.AUDIO_ENCODING_WAV,
  pcm: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
};

/** The HTTP `Content-Type` of a speech format. */
export function contentTypeOf(format: SpeechFormat): string {
  return CONTENT_TYPES[format];
}

/** The engine's encoding for a speech format. */
export function encodingOf(format: SpeechFormat): AudioEncoding {
  return ENCODINGS[format];
}

/** The speech formats this machine can produce: mp3, wav and pcm always; opus, aac and flac with ffmpeg. */
export function availableSpeechFormats(): SpeechFormat[] {
  const ffmpeg = ffmpegPath() !== undefined;
  return SPEECH_FORMATS.filter((f) => ffmpeg || !FFMPEG_FORMATS.has(f));
}

/**
 * Encodes a stream of audio chunks into one `format` as they arrive. Chunks
 * already in that encoding (an upstream that encoded for us) pass through
 * untouched; PCM chunks are resampled to `sampleRate` when needed and
 * encoded — mp3 with lamejs, wav as a streamed header plus PCM, pcm as is,
 * opus/aac/flac through ffmpeg. An error thrown by `chunks` ends the
 * generator with that error (the ffmpeg child, if any, is killed).
 */
export async function* encodeAudio(
  chunks: AsyncIterable<AudioChunk>,
  format: SpeechFormat,
  signal: AbortSignal,
  sampleRate = DEFAULT_OUTPUT_RATE,
): AsyncGenerator<Uint8Array> {
  const target = ENCODINGS[format];
  const it = chunks[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) {
    if (format === "wav") yield wavHeader(sampleRate);
    return;
  }
  const all = replay(first.value, it);
  if (first.value.encoding === target && format !== "pcm") {
    for await (const c of all) yield c.data;
    return;
  }
  const pcm = pcmOf(all, sampleRate);
  if (FFMPEG_FORMATS.has(format)) {
    yield* ffmpegEncode(pcm, sampleRate, format as FfmpegOutputFormat, signal);
    return;
  }
  if (format === "mp3") {
    const enc = new Mp3StreamEncoder(sampleRate);
    for await (const bytes of pcm) {
      const out = enc.encode(toSamples(bytes));
      if (out.length > 0) yield out;
    }
    const tail = enc.flush();
    if (tail.length > 0) yield tail;
    return;
  }
  if (format === "wav") yield wavHeader(sampleRate);
  yield* pcm;
}

/** PCM s16le bytes at `rate` from PCM chunks at any rate; any other encoding is an error. */
async function* pcmOf(chunks: AsyncIterable<AudioChunk>, rate: number): AsyncGenerator<Buffer> {
  let resampler: Resampler | undefined;
  for await (const c of chunks) {
    if (c.encoding !== AudioEncoding.AUDIO_ENCODING_PCM_S16LE) {
      throw new Error(`cannot re-encode ${AudioEncoding[c.encoding]} audio`);
    }
    if (c.data.length === 0) continue;
    const from = c.sampleRate || rate;
    if (from === rate) {
      yield Buffer.from(c.data.buffer, c.data.byteOffset, c.data.length);
      continue;
    }
    if (resampler?.inRate !== from) resampler = new Resampler(from, rate);
    yield toBytes(resampler.push(toSamples(c.data)));
  }
}

