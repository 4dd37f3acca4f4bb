/**
 * The overload bench's pure pieces (issue 16): the latency-bound capacity
 * search over step results, the ratios of an overload step against one
 * unloaded divisor, the adaptive limit's trace summary, and the
 * `--adaptive-target MS:SIGNAL` list. No servers, no clocks: what
 * test/overload-probe.test.ts checks.
 */
import { ratio } from "./stats.js";

/** What the capacity search needs of one open-loop step (limit off). */
export interface SearchStep {
  /** Offered streams/s. */
  readonly rate: number;
  readonly started: number;
  readonly ok: number;
  readonly errors: number;
  readonly refused?: number | undefined;
  /** Streams the generator could not start (it had too many open). */
  readonly skipped?: number | undefined;
  /** Served streams' TTFT p99 (ms). */
  readonly p99: number | undefined;
}

/** How many times the unloaded p99 a served p99 may be (the aim). */
export const P99_FACTOR = 3;

/** Whether a search step stays latency-bound: every stream served and TTFT p99 ≤ `factor` × the unloaded p99. */
export function stepWithinBound(s: SearchStep, unloadedP99: number, factor = P99_FACTOR): boolean {
  const all = s.started > 0 && s.ok === s.started && s.errors === 0 && (s.refused ?? 0) === 0 && (s.skipped ?? 0) === 0;
  return all && s.p99 !== undefined && s.p99 <= factor * unloadedP99;
}

/**
 * The latency-bound capacity: of steps offered in rising order, the highest
 * rate before the first one that is not {@link stepWithinBound} (a later
 * step that passes again is noise past the knee, not capacity). Undefined
 * when the first step already fails or there is none.
 */
export function latencyBoundCapacity(steps: readonly SearchStep[], unloadedP99: number, factor = P99_FACTOR): number | undefined {
  let best: number | undefined;
  for (const s of [...steps].sort((a, b) => a.rate - b.rate)) {
    if (!stepWithinBound(s, unloadedP99, factor)) break;
    best = s.rate;
  }
  return best;
}

/** What {@link windowedP99} reads of a run (a load generator's `JobResult`). */
export interface WindowedRun {
  readonly ttft: { readonly p99: number | undefined };
  /** TTFT p99 per window of the schedule (absent in older results). */
  readonly ttftWindowP99?: readonly number[] | undefined;
}

/** Fewest windows whose median {@link windowedP99} trusts; with fewer, the whole run's p99. */
export const MIN_WINDOWS = 3;

/**
 * A run's TTFT p99 as the overload bench judges it: the **median of its
 * per-window p99s** (the load generator's `ttftWindowP99`), or the whole
 * run's p99 when it has fewer than {@link MIN_WINDOWS}. The unloaded run's
 * (5 s windows; a 20 s run has four) is the divisor of every "p99 /
 * unloaded"; a capacity-search step's (1 s windows of a 5 s step) and an
 * overload step's (5 s windows) are compared with it, the same estimator on
 * both sides. Why the median: on a shared host a stall of the whole machine
 * (every process, on both cores, late at once: docs/PERFORMANCE.md
 * "overload6") lands in one window and sets the whole run's p99 by itself —
 * a 20 s run at 100/s has its p99 in the 20 worst of 2,000 streams, so two
 * such stalls decide it — while the gateway's own recurring pauses (a major
 * GC every ~10 s) show in most windows and stay in the median.
 */
export function windowedP99(r: WindowedRun): number | undefined {
  const w = r.ttftWindowP99;
  if (!w || w.length < MIN_WINDOWS) return r.ttft.p99;
  const s = [...w].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : Math.round(((s[m - 1]! + s[m]!) / 2) * 1000) / 1000;
}

/** The rates the search offers, in order (streams/s): it stops at the first that fails. */
export const SEARCH_RATES: readonly number[] = [100, 150, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500, 2000];

/** Of two attempts at one search rate, the one to keep: a pass over a failure (a shared host's p99 is noisy), else the lower p99. */
export function betterAttempt(a: SearchStep, b: SearchStep, unloadedP99: number, factor = P99_FACTOR): SearchStep {
  const pa = stepWithinBound(a, unloadedP99, factor);
  const pb = stepWithinBound(b, unloadedP99, factor);
  if (pa !== pb) return pa ? a : b;
  return (b.p99 ?? Infinity) < (a.p99 ?? Infinity) ? b : a;
}

/** Which capacity the overload steps multiply: latency-bound, closed-loop, or both measured (the steps use the latency-bound one). */
export type CapacityMode = "latency" | "closed" | "both";

/** The capacity the steps multiply: the latency-bound one when measured, else the closed-loop one (0 when neither). */
export function stepCapacity(mode: CapacityMode, latency: number | undefined, closed: number | undefined): number {
  if (mode !== "closed" && latency !== undefined) return latency;
  return mode === "latency" ? 0 : (closed ?? 0);
}

/** An overload step's figures against its capacity and the door's one unloaded p99. */
export interface StepRatios {
  /** Served streams per second of the schedule. */
  readonly servedPerS: number;
  /** servedPerS / capacity. */
  readonly servedShare: number | undefined;
  /** Served TTFT p99 / the unloaded p99. */
  readonly p99VsUnloaded: number | undefined;
}

/** The ratios of a step: `ok` streams over `seconds`, against `capacity` and the one `unloadedP99` (limit off, low rate) of the door. */
export function stepRatios(ok: number, seconds: number, p99: number | undefined, capacity: number, unloadedP99: number | undefined): StepRatios {
  const servedPerS = Math.round(ok / seconds);
  return { servedPerS, servedShare: ratio(servedPerS, capacity), p99VsUnloaded: ratio(p99, unloadedP99) };
}

/** The adaptive limit over a step, read from /metrics (`spillway_concurrency_limit`; -1 = unlimited). */
export interface LimitTrace {
  readonly samples: number;
  /** -1 where the limit was lifted (unlimited); undefined with no sample. */
  readonly min: number | undefined;
  readonly median: number | undefined;
  readonly max: number | undefined;
}

/** Min/median/max of gauge readings, -1 (unlimited) ranking above every number. */
export function limitTrace(values: readonly number[]): LimitTrace {
  const key = (v: number): number => (v < 0 ? Infinity : v);
  const s = [...values].sort((a, b) => key(a) - key(b));
  if (s.length === 0) return { samples: 0, min: undefined, median: undefined, max: undefined };
  return { samples: s.length, min: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] };
}

/** The limit gauge's value(s) in a /metrics text (one per worker series). */
export function limitGaugeValues(text: string): number[] {
  return [...text.matchAll(/^spillway_concurrency_limit(?:\{[^}]*\})? (-?[0-9.e+]+)$/gm)].map((m) => Number(m[1]));
}

/** One `--adaptive-target` entry. */
export interface AdaptiveTarget {
  readonly targetDelayMs: number;
  readonly signal: "max" | "mean";
}

/** Parses `5:max,25:max,10:mean` (a bare `25` is `25:max`); throws on anything else. */
export function parseAdaptiveTargets(list: string): AdaptiveTarget[] {
  return list
    .split(",")
    .filter(Boolean)
    .map((item) => {
      const [ms, signal = "max"] = item.split(":");
      const n = Number(ms);
      if (!(n > 0) || (signal !== "max" && signal !== "mean")) throw new Error(`--adaptive-target: "${item}" is not MS or MS:max|mean`);
      return { targetDelayMs: n, signal };
    });
}
