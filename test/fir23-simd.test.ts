/**
 * The 24 → 16 kHz filter on WebAssembly SIMD (src/audio/fir23-simd.ts)
 * against RationalResampler's general loop: the same output within a
 * float32 rounding tolerance (it sums in float32 four lanes at once, the
 * loop in float64 left to right) over random input cut at random and odd
 * chunk boundaries, the state carried across calls; the same number of
 * outputs; and `loop: "auto"` picks SIMD on this Node.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simdAvailable } from "../src/audio/fir23-simd.js";
import { RationalResampler, type ResampleLoop } from "../src/audio/rational-resample.js";
import { convertInPieces } from "./helpers/resample.js";

/** Largest difference allowed between SIMD and the general loop on outputs in [-1, 1]. */
const TOLERANCE = 2e-6;

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pushes `x` through a fresh converter with `loop` in pieces of `sizes` (cycled), collecting every output. */
function convert(loop: ResampleLoop, x: Int16Array, sizes: readonly number[]): Float32Array {
  return convertInPieces(new RationalResampler(24_000, 16_000, { loop }), x, sizes);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("24 → 16 kHz on WebAssembly SIMD", () => {
  it("is available on this Node, and auto picks it", () => {
    assert.equal(simdAvailable(), true);
    assert.equal(new RationalResampler(24_000, 16_000).loop, "simd");
    assert.equal(new RationalResampler(24_000, 16_000, { loop: "auto" }).loop, "simd");
    assert.equal(new RationalResampler(24_000, 16_000, { loop: "unrolled" }).loop, "unrolled");
    // Other ratios have one loop.
    assert.equal(new RationalResampler(48_000, 16_000, { loop: "simd" }).loop, "general");
  });

  it("gives the general loop's output within tolerance on random input, at any chunk boundaries", (t) => {
    const next = rng(17);
    let worst = 0;
    for (let trial = 0; trial < 12; trial++) {
      const n = 3000 + Math.floor(next() * 6000);
      const x = new Int16Array(n);
      // Full scale in some trials (clipping included), quieter in others.
      const scale = trial % 3 === 0 ? 32767 : trial % 3 === 1 ? 8000 : 300;
      for (let i = 0; i < n; i++) x[i] = Math.max(-32768, Math.min(32767, Math.round((next() * 2 - 1) * scale)));
      // Odd, random, one-sample and empty pieces; the whole in one; the realtime door's 480.
      const sizes = trial === 0 ? [x.length] : trial === 1 ? [480] : trial === 2 ? [1] : Array.from({ length: 7 }, () => Math.floor(next() * 700) * 2 + 1).concat([0, 2]);
      const simd = convert("simd", x, sizes);
      const general = convert("general", x, sizes);
      assert.equal(simd.length, general.length, `trial ${trial}: as many outputs`);
      assert.equal(simd.length, Math.ceil((n * 2) / 3));
      const d = maxDiff(simd, general);
      assert.ok(d <= TOLERANCE, `trial ${trial} (pieces ${sizes.join(",")}): ${d} apart`);
      worst = Math.max(worst, d);
      if (scale > 300) assert.ok(simd.some((v) => Math.abs(v) > 0.01), "sound came through");
    }
    t.diagnostic(`largest difference from the general loop: ${worst}`);
  });

  it("carries state across calls: pieces give what one push gives, and converters interleaved do not disturb each other", () => {
    const next = rng(5);
    const x = new Int16Array(9000);
    for (let i = 0; i < x.length; i++) x[i] = Math.round(Math.sin(i / 9) * 12_000 + (next() - 0.5) * 4000);
    const whole = convert("simd", x, [x.length]);
    // Two converters taking turns on the module's shared memory, cut differently.
    const a = new RationalResampler(24_000, 16_000, { loop: "simd" });
    const b = new RationalResampler(24_000, 16_000, { loop: "simd" });
    const outA: number[] = [];
    const outB: number[] = [];
    for (let i = 0, j = 0, k = 0; i < x.length || j < x.length; k++) {
      const na = [3, 331, 481, 1][k % 4]!;
      const nb = [959, 7, 2][k % 3]!;
      if (i < x.length) for (const v of a.push(x.subarray(i, (i += na)))) outA.push(v);
      if (j < x.length) for (const v of b.push(x.subarray(j, (j += nb)))) outB.push(v);
    }
    // The same floats, summed in the same order: bit for bit.
    assert.deepEqual(Float32Array.from(outA), whole);
    assert.deepEqual(Float32Array.from(outB), whole);
  });

  it("takes a chunk larger than the module's first memory page", () => {
    const x = new Int16Array(40_000);
    for (let i = 0; i < x.length; i++) x[i] = Math.round(Math.sin(i / 13) * 20_000);
    const simd = convert("simd", x, [x.length]);
    const general = convert("general", x, [x.length]);
    assert.ok(maxDiff(simd, general) <= TOLERANCE);
  });
});
