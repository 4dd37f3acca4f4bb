import { SampleAligner, toBytes, toSamples } from "../../../audio/pcm.js";
import { Resampler } from "../../../audio/resample.js";
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from "./g711.js";

/** The audio formats of the Realtime protocol. */
export type RealtimeAudioFormat = "audio/pcm" | "audio/pcmu" | "audio/pcma";

/** Internal audio rate of a realtime session: pcm16 mono at 24 kHz. */
export const SESSION_RATE = 24_000;

/** Sample rate of a format on the wire. */
export function formatRate(f: RealtimeAudioFormat): number {
  return f === "audio/pcm" ? SESSION_RATE : 8000;
}

/** Bytes per sample of a format on the wire (2 for pcm16, 1 for G.711). */
export function formatBytesPerSample(f: RealtimeAudioFormat): number {
  return f === "audio/pcm" ? 2 : 1;
}

/**
 * Client audio in `format` as 16-bit samples at the format's own rate (no
 * resampling): a view of the bytes for pcm16 (a copy when they are not
 * 2-byte aligned), a table decode for G.711. Throws an Error naming the
 * problem when pcm16 bytes are not whole samples.
 */
export function decodeWire(format: RealtimeAudioFormat, bytes: Uint8Array): Int16Array {
  switch (format) {
    case "audio/pcm":
      if (bytes.length % 2 !== 0) {
        throw new Error(`audio/pcm audio is 16-bit samples, so its length must be even; got ${bytes.length} bytes`);
      }
      return toSamples(bytes);
    case "audio/pcmu":
      return decodeUlaw(bytes);
    case "audio/pcma":
      return decodeAlaw(bytes);
  }
}

/** Audio in format `from` as audio in format `to` (decoded, resampled, encoded). Throws as {@link decodeWire}. */
export function convertWire(from: RealtimeAudioFormat, to: RealtimeAudioFormat, bytes: Uint8Array): Buffer {
  return new OutputEncoder(to).encode(toBytes(decodeWire(from, bytes)), formatRate(from));
}

/**
 * Turns client audio in `format` into session PCM (24 kHz samples). Stateful:
 * one per input stream, so resampling is continuous across appends. Throws
 * an Error naming the problem when the bytes cannot be in this format.
 */
export class InputDecoder {
  private readonly resampler: Resampler;

  constructor(readonly format: RealtimeAudioFormat) {
    this.resampler = new Resampler(formatRate(format), SESSION_RATE);
  }

  /** Decodes one piece of input audio. */
  decode(bytes: Uint8Array): Int16Array {
    return this.resampler.push(decodeWire(this.format, bytes));
  }
}

/**
 * Turns engine audio (16-bit PCM at any rate) into bytes of `format` for the
 * client. Stateful: one per output stream (a sample split across chunks is
 * joined; resampling is continuous).
 */
export class OutputEncoder {
  private resampler: Resampler | undefined;
  private readonly aligner = new SampleAligner();

  constructor(readonly format: RealtimeAudioFormat) {}

  /** Encodes one piece of PCM audio at `rate` Hz. */
  encode(pcm: Uint8Array, rate: number): Buffer {
    const target = formatRate(this.format);
    if (!this.resampler || this.resampler.inRate !== rate) this.resampler = new Resampler(rate, target);
    const samples = this.resampler.push(toSamples(this.aligner.push(pcm)));
    switch (this.format) {
      case "audio/pcm":
        return Buffer.from(toBytes(samples));
      case "audio/pcmu":
        return Buffer.from(encodeUlaw(samples));
      case "audio/pcma":
        return Buffer.from(encodeAlaw(samples));
    }
  }

  /** Duration (ms) of `bytes` of encoded output. */
  durationMs(bytes: number): number {
    return this.format === "audio/pcm" ? (bytes / 2 / SESSION_RATE) * 1000 : bytes / 8;
  }
}
