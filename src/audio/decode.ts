import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { AudioEncoding } from "../gen/spillway/v1/chunk.js";
import { audioInputError } from "./audio-error.js";
import { lastLine, runThrough } from "./child-process.js";
import { ffmpegDecode, ffmpegPath } from "./ffmpeg.js";
import { Mp3StreamDecoder } from "./mp3-decoder.js";
import { SampleAligner, toSamples } from "./pcm.js";
import { Resampler } from "./resample.js";
import { SNIFF_BYTES, sniffAudio, type SniffedFormat } from "./sniff.js";
import { WavStreamParser } from "./wav.js";
import { replay } from "./replay.js";

/** How to read the audio given to {@link decodeToPcm}. */
export interface DecodeOptions {
  /** The encoding the sender declared; `UNSPECIFIED` (or WAV, MP3, …) is recognized from the bytes. */
  readonly encoding: AudioEncoding;
  /** Sample rate of raw PCM input (`PCM_S16LE`); ignored for files. */
  readonly inputRate: number;
  /** Sample rate of the PCM to produce. */
  readonly targetRate: number;
  readonly signal: AbortSignal;
}

/** Formats decoded in process, with no external tool. */
const NATIVE: ReadonlySet<SniffedFormat> = new Set(["wav", "mp3"]);

/**
 * Decodes audio as it arrives into s16 mono PCM at `targetRate`: raw PCM,
 * WAV and MP3 in process (streaming), everything else through ffmpeg when it
 * is installed (piped; MP4/M4A, whose index may sit at the end, is spooled
 * to a temporary file first). Bad input — empty, corrupt, or a format that
 * needs a missing ffmpeg — throws a 400 naming the problem, as soon as it is
 * detected.
 */
export async function* decodeToPcm(input: AsyncIterable<Uint8Array>, opts: DecodeOptions): AsyncGenerator<Int16Array> {
  if (opts.encoding === AudioEncoding.AUDIO_ENCODING_PCM_S16LE) {
    if (!opts.inputRate) throw audioInputError("Raw PCM audio needs its sample rate.", "sample_rate");
    yield* resampled(rawPcm(input), opts.inputRate, opts.targetRate);
    return;
  }
  const { head, rest } = await peek(input, SNIFF_BYTES);
  if (head.length === 0) throw audioInputError("The audio file is empty.");
  const format = sniffAudio(head);
  const all = replay(head, rest);
  if (format === "wav") yield* decodeWav(all, opts.targetRate);
  else if (format === "mp3") yield* decodeMp3(all, opts.targetRate);
  else {
    if (!ffmpegPath()) {
      const what = format === "unknown" ? "Unsupported or unrecognized audio format" : `Audio format '${format}' is not supported here`;
      throw audioInputError(`${what}: WAV and MP3 are supported; install ffmpeg for M4A, OGG, FLAC, WebM and others.`);
    }
    const what =
      format === "unknown"
        ? "Unsupported or corrupt audio file (not WAV, MP3, M4A, OGG, FLAC, WebM or AAC), ffmpeg says"
        : `The ${format} audio file could not be decoded`;
    const pcm =
      format === "mp4" ? ffmpegDecodeSpooled(all, opts.targetRate, opts.signal) : ffmpegDecode(all, opts.targetRate, opts.signal, what);
    yield* rawPcmSamples(pcm, format);
  }
}

/** True when a file of this format can be decoded on this machine. */
export function canDecode(format: SniffedFormat): boolean {
  return NATIVE.has(format) || ffmpegPath() !== undefined;
}

async function* decodeWav(input: AsyncIterable<Uint8Array>, targetRate: number): AsyncGenerator<Int16Array> {
  const parser = new WavStreamParser();
  let resampler: Resampler | undefined;
  for await (const chunk of input) {
    const samples = parser.push(chunk);
    if (samples.length === 0) continue;
    resampler ??= new Resampler(parser.format!.sampleRate, targetRate);
    yield resampler.push(samples);
  }
  parser.end();
}

async function* decodeMp3(input: AsyncIterable<Uint8Array>, targetRate: number): AsyncGenerator<Int16Array> {
  const decoder = new Mp3StreamDecoder();
  await decoder.init();
  let resampler: Resampler | undefined;
  try {
    for await (const chunk of input) {
      const r = decoder.push(chunk);
      if (r.samples.length === 0) continue;
      resampler ??= new Resampler(r.sampleRate, targetRate);
      yield resampler.push(r.samples);
    }
    decoder.end();
  } finally {
    decoder.free();
  }
}

async function* rawPcm(input: AsyncIterable<Uint8Array>): AsyncGenerator<Int16Array> {
  const aligner = new SampleAligner();
  for await (const chunk of input) {
    const whole = aligner.push(chunk);
    if (whole.length > 0) yield toSamples(whole);
  }
}

async function* rawPcmSamples(pcm: AsyncIterable<Uint8Array>, format: SniffedFormat): AsyncGenerator<Int16Array> {
  let any = false;
  for await (const s of rawPcm(pcm)) {
    any = true;
    yield s;
  }
  if (!any) throw audioInputError(`The ${format === "unknown" ? "" : `${format} `}audio file holds no audio.`);
}

async function* resampled(input: AsyncIterable<Int16Array>, from: number, to: number): AsyncGenerator<Int16Array> {
  const r = new Resampler(from, to);
  for await (const s of input) yield r.push(s);
}

/** MP4/M4A through a temporary file, so ffmpeg can seek to an index at the end. */
async function* ffmpegDecodeSpooled(input: AsyncIterable<Uint8Array>, targetRate: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "spillway-audio-"));
  try {
    const file = join(dir, "input.m4a");
    const out = createWriteStream(file);
    for await (const chunk of input) {
      signal.throwIfAborted();
      if (!out.write(chunk)) await once(out, "drain");
    }
    out.end();
    await once(out, "close");
    yield* runThrough({
      command: ffmpegPath()!,
      args: ["-hide_banner", "-nostdin", "-loglevel", "error", "-i", file, "-vn", "-ac", "1", "-ar", String(targetRate), "-f", "s16le", "pipe:1"],
      signal,
      onFailure: (stderr) => audioInputError(`The audio file could not be decoded: ${lastLine(stderr).replace(file, "input") || "ffmpeg failed"}.`),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads at least `n` bytes (fewer at the end) and returns them with the rest of the stream. */
async function peek(
  input: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Buffer; rest: AsyncIterator<Uint8Array> }> {
  const it = input[Symbol.asyncIterator]();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < n) {
    const r = await it.next();
    if (r.done) break;
    parts.push(r.value);
    size += r.value.length;
  }
  return { head: Buffer.concat(parts), rest: it };
}

