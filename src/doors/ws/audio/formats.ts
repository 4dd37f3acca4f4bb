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
    switch (this.format) {
      case "audio/pcm":
        if (bytes.length % 2 !== 0) {
          throw new Error(`audio/pcm audio is 16-bit samples, so its length must be even; got ${bytes.length} bytes`);
        }
        return toSamples(bytes);
      case "audio/pcmu":
        return this.resampler.push(decodeUlaw(bytes));
      case "audio/pcma":
        return this.resampler.push(decodeAlaw(bytes));
    }
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
