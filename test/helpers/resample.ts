/**
 * Test helper: runs audio through a {@link RationalResampler} in pieces, so
 * tests can compare its loops and chunk boundaries on the same input.
 */
import type { RationalResampler } from "../../src/audio/rational-resample.js";

/** Pushes `x` through `r` in pieces of the given sizes (cycled), collecting every output sample. */
export function convertInPieces(r: RationalResampler, x: Int16Array, sizes: readonly number[]): Float32Array {
  const out: number[] = [];
  for (let i = 0, k = 0; i < x.length; k++) {
    const n = sizes[k % sizes.length]!;
    for (const v of r.push(x.subarray(i, i + n))) out.push(v);
    i += n;
  }
  return Float32Array.from(out);
}
