/**
 * ElevenLabs `output_format`s for an engine request, and the chunks made of
 * what comes back. PCM is asked for at the requested rate when ElevenLabs
 * makes it (else 24 kHz, resampled by the door), and yielded as s16le
 * chunks with their rate (a sample split across two upstream reads is
 * joined). mp3, µ-law and A-law are passed through encoded, so telephony
 * audio (`ulaw_8000`) is never decoded and re-encoded. Formats ElevenLabs
 * does not make as OpenAI clients expect them (wav, opus, aac, flac) are
 * asked for as PCM and encoded by the door.
 */
import { AudioEncoding } from "../../gen/spillway/v1/chunk.js";
import type { SynthesizeRequest } from "../../gen/spillway/v1/request.js";
import type { ChunkPayload } from "../../engine/payload.js";
import { SampleAligner } from "../../audio/pcm.js";

const PCM_RATES: readonly number[] = [8000, 16000, 22050, 24000, 44100, 48000];

/** Encodings the provider yields as they are (besides PCM). */
export const ELEVENLABS_ENCODINGS: readonly AudioEncoding[] = [
  AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
  AudioEncoding.AUDIO_ENCODING_MP3,
  AudioEncoding.AUDIO_ENCODING_PCMU,
  AudioEncoding.AUDIO_ENCODING_PCMA,
];

/** An output format and what its bytes are. */
export interface OutputFormat {
  /** `pcm_24000`, `mp3_44100_128`, `ulaw_8000`, … */
  readonly name: string;
  readonly encoding: AudioEncoding;
  readonly sampleRate: number;
  /** Bytes per second, for the audio's duration (0 when unknown: mp3). */
  readonly bytesPerSecond: number;
}

/** The output format to ask for. */
export function outputFormatOf(req: SynthesizeRequest): OutputFormat {
  switch (req.encoding) {
    case AudioEncoding.AUDIO_ENCODING_MP3:
      return { name: "mp3_44100_128", encoding: req.encoding, sampleRate: 44100, bytesPerSecond: 0 };
    case AudioEncoding.AUDIO_ENCODING_PCMU:
      return { name: "ulaw_8000", encoding: req.encoding, sampleRate: 8000, bytesPerSecond: 8000 };
    case AudioEncoding.AUDIO_ENCODING_PCMA:
      return { name: "alaw_8000", encoding: req.encoding, sampleRate: 8000, bytesPerSecond: 8000 };
    default: {
      const rate = PCM_RATES.includes(req.sampleRate) ? req.sampleRate : 24_000;
      return { name: `pcm_${rate}`, encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: rate, bytesPerSecond: rate * 2 };
    }
  }
}

/** Turns upstream audio bytes into chunk payloads of one format. */
export class AudioChunker {
  private readonly aligner: SampleAligner | undefined;
  /** Bytes yielded. */
  bytes = 0;

  constructor(readonly format: OutputFormat) {
    this.aligner = format.encoding === AudioEncoding.AUDIO_ENCODING_PCM_S16LE ? new SampleAligner() : undefined;
  }

  /** The payload for `data`, or undefined when it completes no sample yet. */
  chunk(data: Uint8Array): ChunkPayload | undefined {
    const bytes = this.aligner ? this.aligner.push(data) : data;
    if (bytes.length === 0) return undefined;
    this.bytes += bytes.length;
    const { encoding, sampleRate } = this.format;
    return { $case: "audio", value: { data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), encoding, sampleRate, channels: 1 } };
  }

  /** Seconds of audio yielded (0 for mp3). */
  get seconds(): number {
    return this.format.bytesPerSecond > 0 ? this.bytes / this.format.bytesPerSecond : 0;
  }
}
