/** Latency summaries for the benchmark: percentiles over recorded samples. */

/** Percentiles of a set of samples (milliseconds), `undefined` fields when there were none. */
export interface Summary {
  readonly n: number;
  readonly p50: number | undefined;
  readonly p90: number | undefined;
  readonly p99: number | undefined;
  readonly max: number | undefined;
  readonly mean: number | undefined;
}

/** Summarizes `samples` (sorted in place): nearest-rank percentiles. */
export function summarize(samples: number[]): Summary {
  const n = samples.length;
  if (n === 0) return { n, p50: undefined, p90: undefined, p99: undefined, max: undefined, mean: undefined };
  samples.sort((a, b) => a - b);
  const at = (q: number): number => round(samples[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!);
  let sum = 0;
  for (const s of samples) sum += s;
  return { n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(samples[n - 1]!), mean: round(sum / n) };
}

/** Rounds to microseconds (3 decimals of a millisecond). */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** `a - b` when both are defined. */
export function minus(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : round(a - b);
}

/** `a / b` rounded to 2 decimals, when both are defined and b is not 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100;
}
