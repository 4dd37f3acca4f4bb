/**
 * A streaming sample-rate converter for s16 mono audio: linear
 * interpolation, preceded when downsampling by a windowed-sinc low-pass
 * filter so that frequencies above the new Nyquist limit do not alias.
 * State carries across chunks, so a stream can be converted piece by piece
 * with no clicks at chunk boundaries. Good enough for speech (engines run at
 * 16-24 kHz); not a mastering-grade converter.
 */
export class Resampler {
  private readonly step: number;
  private readonly taps: Float32Array | undefined;
  private history: Float32Array;
  private prev: number | undefined;
  /** Position of the next output sample, in input samples after `prev`. */
  private t = 0;

  constructor(
    readonly inRate: number,
    readonly outRate: number,
  ) {
    this.step = inRate / outRate;
    // ~16 taps per output sample period keeps the transition band narrow (Blackman: about 5.5/N of the input rate).
    this.taps = outRate < inRate ? lowPass(0.5 * (outRate / inRate) * 0.9, 32 * Math.ceil(inRate / outRate) + 1) : undefined;
    this.history = new Float32Array(this.taps ? this.taps.length - 1 : 0);
  }

  /** Converts the next chunk of input; returns the output samples it completes. */
  push(input: Int16Array): Int16Array {
    if (this.inRate === this.outRate) return input;
    if (input.length === 0) return input;
    const x = this.taps ? this.filter(input) : Float32Array.from(input);
    // Work on [prev, ...x] so interpolation spans chunk boundaries.
    const offset = this.prev === undefined ? 0 : 1;
    const at = (i: number): number => (i < offset ? this.prev! : x[i - offset]!);
    const len = x.length + offset;
    const out: number[] = [];
    let t = this.t;
    while (t < len - 1) {
      const i = Math.floor(t);
      const frac = t - i;
      out.push(at(i) * (1 - frac) + at(i + 1) * frac);
      t += this.step;
    }
    this.t = t - (len - 1);
    this.prev = x[x.length - 1]!;
    const r = new Int16Array(out.length);
    for (let i = 0; i < out.length; i++) {
      const v = Math.round(out[i]!);
      r[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return r;
  }

  private filter(input: Int16Array): Float32Array {
    const taps = this.taps!;
    const h = this.history;
    const buf = new Float32Array(h.length + input.length);
    buf.set(h);
    for (let i = 0; i < input.length; i++) buf[h.length + i] = input[i]!;
    const out = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) {
      let acc = 0;
      for (let k = 0; k < taps.length; k++) acc += taps[k]! * buf[i + k]!;
      out[i] = acc;
    }
    this.history = buf.slice(buf.length - h.length);
    return out;
  }
}

/** A Blackman-windowed sinc low-pass with cutoff `fc` (fraction of the sample rate), normalized to unit gain. */
function lowPass(fc: number, n: number): Float32Array {
  const taps = new Float32Array(n);
  const m = n - 1;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - m / 2;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / m) + 0.08 * Math.cos((4 * Math.PI * i) / m);
    taps[i] = sinc * w;
    sum += taps[i]!;
  }
  for (let i = 0; i < n; i++) taps[i] = taps[i]! / sum;
  return taps;
}
