/**
 * A streaming polyphase FIR resampler for rates whose ratio is a small
 * fraction (24 kHz → 16 kHz is 2/3), computing only the output samples: per
 * output sample one phase of the filter, {@link TAPS_PER_PHASE} multiplies,
 * where `Resampler` (resample.ts) low-passes every input sample and then
 * interpolates. Made for analysis (the Silero VAD's 16 kHz input), so it
 * returns floats in [-1, 1]: about a fifth of `Resampler`'s CPU for
 * 24 → 16 kHz, with a shorter filter (a wider transition band, from about
 * 5.5 kHz, which a speech detector does not mind; not for audio people hear).
 * 24 → 16 kHz runs on WebAssembly SIMD where the runtime has it
 * (src/audio/fir23-simd.ts: within ~1e-6 of the general loop, not bit for
 * bit), else an unrolled loop with the general loop's exact output.
 */
import { Fir23Simd, simdAvailable } from "./fir23-simd.js";

/**
 * Which loop runs 24 → 16 kHz: `simd` (WebAssembly SIMD, throws where the
 * runtime has none), `unrolled` (JavaScript, bit-identical to `general`),
 * `general` (the loop every other ratio runs), `auto` (simd when available,
 * else unrolled; the default). Other ratios always run the general loop.
 */
export type ResampleLoop = "auto" | "simd" | "unrolled" | "general";

/** Options of {@link RationalResampler}. */
export interface RationalResamplerOptions {
  /** The 24 → 16 kHz loop (default `auto`). */
  readonly loop?: ResampleLoop | undefined;
}

/** Filter taps per output phase. */
export const TAPS_PER_PHASE = 24;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Filters by up/down factors: designed once per process (every session's detector, and each reset, makes a converter). */
const PHASES = new Map<string, readonly Float32Array[]>();

/** The polyphase filter for up/down: phases[p][m] = h[p + up·m] · up / 32768 (a Blackman-windowed sinc). */
function designPhases(up: number, down: number): readonly Float32Array[] {
  const n = up * TAPS_PER_PHASE;
  // Cutoff at 90% of the lower Nyquist rate, as a fraction of the upsampled rate.
  const fc = (0.5 / Math.max(up, down)) * 0.9;
  const h = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - (n - 1) / 2;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (n - 1));
    h[i] = sinc * w;
    sum += h[i]!;
  }
  return Array.from({ length: up }, (_, p) => {
    const taps = new Float32Array(TAPS_PER_PHASE);
    for (let m = 0; m < TAPS_PER_PHASE; m++) taps[m] = ((h[p + up * m]! / sum) * up) / 32768;
    return taps;
  });
}

/** A 24 → 16 kHz (or any L/M) converter; state carries across chunks. */
export class RationalResampler {
  /** Up and down factors. */
  private readonly up: number;
  private readonly down: number;
  /** phases[p][m] = h[p + up·m] · up / 32768. */
  private readonly phases: readonly Float32Array[];
  /** Input as floats: the last TAPS_PER_PHASE − 1 samples of the previous chunk (oldest first), then the chunk. Reused. */
  private buf = new Float32Array(TAPS_PER_PHASE - 1 + 960);
  /** Output, reused. */
  private out = new Float32Array(640);
  /** Position of the next output, in upsampled samples from the start of the next chunk. */
  private next = 0;
  /** The history (the last TAPS_PER_PHASE − 1 input samples) is all zeros. */
  private quiet = true;
  /** The loop this converter runs (`auto` resolved; `general` for ratios other than 2/3). */
  readonly loop: Exclude<ResampleLoop, "auto">;
  /** The SIMD filter, when `loop` is `simd`. */
  private readonly simd: Fir23Simd | undefined;

  constructor(
    readonly inRate: number,
    readonly outRate: number,
    options: RationalResamplerOptions = {},
  ) {
    const g = gcd(inRate, outRate);
    this.up = outRate / g;
    this.down = inRate / g;
    if (this.up > 16 || this.down > 16) throw new Error(`RationalResampler: ${inRate} → ${outRate} Hz is not a small ratio`);
    const key = `${this.up}/${this.down}`;
    let phases = PHASES.get(key);
    if (!phases) {
      phases = designPhases(this.up, this.down);
      PHASES.set(key, phases);
    }
    this.phases = phases;
    const want = options.loop ?? "auto";
    if (this.up !== 2 || this.down !== 3) this.loop = "general";
    else if (want === "auto") this.loop = simdAvailable() ? "simd" : "unrolled";
    else this.loop = want;
    this.simd = this.loop === "simd" ? new Fir23Simd(phases[0]!, phases[1]!) : undefined;
  }

  /**
   * Converts the next chunk; returns the output samples it completes, as
   * floats in [-1, 1] — a view of the converter's own buffer, valid until
   * the next call (copy what must be kept).
   */
  push(input: Int16Array): Float32Array {
    const k = TAPS_PER_PHASE;
    if (this.buf.length < k - 1 + input.length) {
      const grown = new Float32Array(k - 1 + input.length);
      grown.set(this.buf.subarray(0, k - 1));
      this.buf = grown;
    }
    const buf = this.buf;
    const { up, down } = this;
    const limit = input.length * up;
    const need = Math.max(0, Math.ceil((limit - this.next) / down));
    if (this.out.length < need) this.out = new Float32Array(need);
    const out = this.out;
    let zero = this.quiet;
    for (let i = 0; zero && i < input.length; i++) zero = input[i] === 0;
    if (zero) {
      // Digital silence in, silence out (a muted line, G.711 idle bytes): no filtering; the history stays zeros.
      let t = this.next;
      let o = 0;
      for (; t < limit; t += down) o++;
      this.next = t - limit;
      out.fill(0, 0, o);
      return out.subarray(0, o);
    }
    for (let i = 0; i < input.length; i++) buf[k - 1 + i] = input[i]!;
    let o: number;
    if (this.simd) {
      o = this.simd.run(buf, input.length, this.next, limit, out);
      this.next += 3 * o;
    } else {
      o = this.loop === "unrolled" ? this.filter23(limit, out) : this.filterAny(limit, out);
    }
    this.next -= limit;
    // The chunk's last samples become the history of the next one.
    buf.copyWithin(0, input.length, input.length + k - 1);
    let quiet = true;
    for (let i = 0; quiet && i < k - 1; i++) quiet = buf[i] === 0;
    this.quiet = quiet;
    return out.subarray(0, o);
  }

  /**
   * The general polyphase loop (any L/M): per output sample y = Σ h[p + up·m] · x[j − m],
   * with x[j] at buf[k − 1 + j]. Advances `next` to the first position past `limit`; returns the outputs written.
   */
  private filterAny(limit: number, out: Float32Array): number {
    const k = TAPS_PER_PHASE;
    const { up, down, phases, buf } = this;
    let t = this.next;
    let o = 0;
    for (; t < limit; t += down) {
      const j = Math.floor(t / up);
      const taps = phases[t - j * up]!;
      let acc = 0;
      let at = k - 1 + j;
      for (let m = 0; m < k; m++) acc += taps[m]! * buf[at--]!;
      out[o++] = acc > 1 ? 1 : acc < -1 ? -1 : acc;
    }
    this.next = t;
    return o;
  }

  /**
   * 24 → 16 kHz (up 2, down 3), the realtime VAD's converter: the same sums
   * as {@link filterAny}, term by term in the same order (so the same
   * floats, bit for bit: test/realtime-cpu-paths.test.ts), with the phase
   * picked by parity and the 24 taps unrolled (written for TAPS_PER_PHASE = 24;
   * the test fails if that changes) — about 1.9× faster (load/voice-resample-bench.ts).
   */
  private filter23(limit: number, out: Float32Array): number {
    const [p0, p1] = this.phases as [Float32Array, Float32Array];
    const buf = this.buf;
    let t = this.next;
    let o = 0;
    for (; t < limit; t += 3) {
      const taps = (t & 1) === 0 ? p0 : p1;
      const at = TAPS_PER_PHASE - 1 + (t >> 1);
      // Left to right from 0, as filterAny's `acc +=` adds them.
      const acc =
        0 +
        taps[0]! * buf[at - 0]! +
        taps[1]! * buf[at - 1]! +
        taps[2]! * buf[at - 2]! +
        taps[3]! * buf[at - 3]! +
        taps[4]! * buf[at - 4]! +
        taps[5]! * buf[at - 5]! +
        taps[6]! * buf[at - 6]! +
        taps[7]! * buf[at - 7]! +
        taps[8]! * buf[at - 8]! +
        taps[9]! * buf[at - 9]! +
        taps[10]! * buf[at - 10]! +
        taps[11]! * buf[at - 11]! +
        taps[12]! * buf[at - 12]! +
        taps[13]! * buf[at - 13]! +
        taps[14]! * buf[at - 14]! +
        taps[15]! * buf[at - 15]! +
        taps[16]! * buf[at - 16]! +
        taps[17]! * buf[at - 17]! +
        taps[18]! * buf[at - 18]! +
        taps[19]! * buf[at - 19]! +
        taps[20]! * buf[at - 20]! +
        taps[21]! * buf[at - 21]! +
        taps[22]! * buf[at - 22]! +
        taps[23]! * buf[at - 23]!;
      out[o++] = acc > 1 ? 1 : acc < -1 ? -1 : acc;
    }
    this.next = t;
    return o;
  }
}
