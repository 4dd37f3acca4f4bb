/**
 * PCM helpers for the realtime door: little-endian 16-bit samples to and
 * from bytes, strict base64, and a streaming linear resampler. Written here
 * because src/audio had none when the door was built; prefer src/audio's
 * helpers once they exist.
 */

/** 16-bit little-endian PCM bytes → samples. `bytes.length` must be even. */
export function bytesToSamples(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length >> 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** Samples → 16-bit little-endian PCM bytes. */
export function samplesToBytes(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** Decodes standard base64 (padding optional); undefined when `s` is not base64. */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  return Buffer.from(s, "base64");
}

/**
 * A streaming linear-interpolation resampler for mono 16-bit audio. Keeps
 * the last input sample and the fractional read position between calls, so
 * a stream resampled in pieces equals the stream resampled whole. Good enough
 * for speech between 8, 16, 22.05 and 24 kHz; not a band-limited resampler.
 */
export class LinearResampler {
  private readonly step: number;
  /** Position of the next output sample, relative to `prev` (index -1). */
  private pos = 0;
  private prev: number | undefined;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
  ) {
    this.step = fromRate / toRate;
  }

  /** Resamples the next piece of the stream. */
  process(input: Int16Array): Int16Array {
    if (this.fromRate === this.toRate) return input;
    if (input.length === 0) return input;
    // Work on [prev, ...input]; index 0 is prev when there is one.
    const offset = this.prev === undefined ? 0 : 1;
    const at = (i: number): number => (i < offset ? this.prev! : input[i - offset]!);
    const last = input.length - 1 + offset;
    const out: number[] = [];
    let pos = this.prev === undefined ? 0 : this.pos;
    while (pos <= last) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = at(i);
      const b = i + 1 <= last ? at(i + 1) : a;
      out.push(Math.round(a + (b - a) * frac));
      pos += this.step;
    }
    this.pos = pos - last;
    this.prev = input[input.length - 1]!;
    return Int16Array.from(out);
  }
}
