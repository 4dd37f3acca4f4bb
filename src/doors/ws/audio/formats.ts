import { encodeAlaw, encodeUlaw, decodeAlaw, decodeUlaw } from "./g711.js";
import { bytesToSamples, LinearResampler, samplesToBytes } from "./pcm.js";

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
  private readonly resampler: LinearResampler;

  constructor(readonly format: RealtimeAudioFormat) {
    this.resampler = new LinearResampler(formatRate(format), SESSION_RATE);
  }

  /** Decodes one piece of input audio. */
  decode(bytes: Uint8Array): Int16Array {
    switch (this.format) {
      case "audio/pcm":
        if (bytes.length % 2 !== 0) {
          throw new Error(
            `audio/pcm audio is 16-bit samples, so its length must be even; got ${bytes.length} bytes`,
          );
        }
        return bytesToSamples(bytes);
      case "audio/pcmu":
        return this.resampler.process(decodeUlaw(bytes));
      case "audio/pcma":
        return this.resampler.process(decodeAlaw(bytes));
    }
  }
}

/**
 * Turns engine audio (16-bit PCM at any rate) into bytes of `format` for the
 * client. Stateful: one per output stream.
 */
export class OutputEncoder {
  private resampler: LinearResampler | undefined;
  /** An odd trailing byte of the previous piece, completed by the next. */
  private carry: Buffer | undefined;

  constructor(readonly format: RealtimeAudioFormat) {}

  /** Encodes one piece of PCM audio at `rate` Hz. */
  encode(pcm: Uint8Array, rate: number): Buffer {
    const target = formatRate(this.format);
    if (!this.resampler || this.resampler.fromRate !== rate) this.resampler = new LinearResampler(rate, target);
    let bytes = this.carry ? Buffer.concat([this.carry, pcm]) : pcm;
    this.carry = undefined;
    if (bytes.length % 2) {
      this.carry = Buffer.from(bytes.subarray(bytes.length - 1));
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const samples = this.resampler.process(bytesToSamples(bytes));
    switch (this.format) {
      case "audio/pcm":
        return samplesToBytes(samples);
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
