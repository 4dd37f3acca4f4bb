/**
 * PCM helpers. Inside Spillway audio is signed 16-bit little-endian PCM,
 * mono, with an explicit sample rate; these helpers move between byte
 * buffers and samples without copying where they can.
 */

/** Bytes per sample of s16le PCM. */
export const BYTES_PER_SAMPLE = 2;

/** The sample rate OpenAI's `pcm` speech format uses, and Spillway's default output rate. */
export const DEFAULT_OUTPUT_RATE = 24_000;

/**
 * Views s16le bytes as samples. Copies only when `bytes` is not 2-byte
 * aligned in its ArrayBuffer (a typed-array view requires it).
 * `bytes.length` must be even.
 */
export function toSamples(bytes: Uint8Array): Int16Array {
  if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
  return new Int16Array(new Uint8Array(bytes).buffer, 0, bytes.length >> 1);
}

/** Views samples as s16le bytes (no copy). */
export function toBytes(samples: Int16Array): Buffer {
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** Seconds of audio in `bytes` of s16le mono PCM at `sampleRate`. */
export function pcmSeconds(bytes: number, sampleRate: number): number {
  return sampleRate > 0 ? bytes / BYTES_PER_SAMPLE / sampleRate : 0;
}

/** Converts float samples (-1..1) to s16, clipping. */
export function floatToS16(input: Float32Array): Int16Array {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    out[i] = v >= 1 ? 32767 : v <= -1 ? -32768 : Math.round(v * 32767);
  }
  return out;
}

/** Averages planar channels into one float channel. */
export function mixDown(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0]!;
  const n = channels[0]?.length ?? 0;
  const out = new Float32Array(n);
  for (const c of channels) for (let i = 0; i < n; i++) out[i] = out[i]! + c[i]! / channels.length;
  return out;
}

/**
 * Re-chunks a byte stream into whole s16 samples: an odd trailing byte is
 * kept for the next chunk, so no sample is ever split.
 */
export class SampleAligner {
  private carry: Buffer | undefined;

  /** Returns the whole samples available so far (possibly empty). */
  push(chunk: Uint8Array): Buffer {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.carry) {
      buf = Buffer.concat([this.carry, buf]);
      this.carry = undefined;
    }
    if (buf.length % 2 === 1) {
      this.carry = Buffer.from(buf.subarray(buf.length - 1));
      buf = buf.subarray(0, buf.length - 1);
    }
    return buf;
  }
}

/**
 * `pieces` (of `total` bytes) as one buffer: a view when they lie one after
 * the other in the same memory (as the pieces a realtime session's input
 * buffer decoded into its store do), else a concatenated copy.
 */
export function joinPieces(pieces: readonly Uint8Array[], total: number): Uint8Array {
  const first = pieces[0];
  if (!first) return new Uint8Array(0);
  if (pieces.length === 1) return first;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) return Buffer.concat(pieces, total);
    end += p.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}
