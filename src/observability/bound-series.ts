import type { Counter, Histogram } from "prom-client";

/** A series' value as prom-client 15 keeps it in a metric's `hashMap`. */
interface CounterEntry {
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}
interface HistogramEntry {
  readonly labels: Readonly<Record<string, string>>;
  readonly bucketValues: Record<number, number>;
  sum: number;
  count: number;
}
/** What is read of a prom-client metric beyond its typings: its series by label hash. */
interface WithHashMap<E> {
  readonly hashMap: Readonly<Record<string, E>>;
}

/** The entry of `map` whose labels are exactly `labels`. */
function entryOf<E extends { readonly labels: Readonly<Record<string, string>> }>(map: Readonly<Record<string, E>>, labels: Readonly<Record<string, string>>): E | undefined {
  const names = Object.keys(labels);
  for (const e of Object.values(map)) {
    const l = e.labels;
    if (Object.keys(l).length === names.length && names.every((n) => l[n] === labels[n])) return e;
  }
  return undefined;
}

/**
 * One series of a prom-client counter (fixed label values), bound once: an
 * increment adds to the series' value in place instead of prom-client
 * validating, hashing and looking up the labels each time (~0.2–0.5 µs per
 * call with 2–7 labels, the bulk of the request metrics' cost). The first
 * increment, and the first after the metric was reset, goes through
 * prom-client's own `inc` (which creates the series as always) and binds
 * to the entry it made; values prom-client would refuse (negative, not
 * finite) also go through it and throw as it throws. What a scrape shows is
 * prom-client's own export of the same entries (test/bound-series.test.ts
 * compares it with a metric moved through the public API).
 *
 * Relies on prom-client 15's series store (`hashMap` of `{ labels, value }`);
 * the test above fails if that changes. A series removed with prom-client's
 * `remove()` (the gateway never removes any) would not be seen: only a
 * reset, which replaces the store, rebinds.
 */
export class CounterSeries {
  private entry: CounterEntry | undefined;
  private map: unknown;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: Readonly<Record<string, string>>,
  ) {}

  /** Adds `value` (≥ 0, finite) to the series. */
  inc(value: number): void {
    const map = (this.counter as unknown as WithHashMap<CounterEntry>).hashMap;
    if (this.entry !== undefined && this.map === map && value >= 0 && value !== Infinity) {
      this.entry.value += value;
      return;
    }
    this.counter.inc(this.labels, value);
    this.entry = entryOf(map, this.labels);
    this.map = map;
  }
}

/** One series of a prom-client histogram, bound once, as {@link CounterSeries} (same reliance, same test). */
export class HistogramSeries {
  private entry: HistogramEntry | undefined;
  private map: unknown;
  private readonly bounds: readonly number[];

  constructor(
    private readonly histogram: Histogram<string>,
    private readonly labels: Readonly<Record<string, string>>,
  ) {
    this.bounds = (histogram as unknown as { readonly upperBounds: readonly number[] }).upperBounds;
  }

  /** Observes `value` (finite): its bucket, the sum and the count, as prom-client's `observe` does. */
  observe(value: number): void {
    const map = (this.histogram as unknown as WithHashMap<HistogramEntry>).hashMap;
    const e = this.entry;
    if (e !== undefined && this.map === map && Number.isFinite(value)) {
      const bounds = this.bounds;
      for (let i = 0; i < bounds.length; i++) {
        const b = bounds[i]!;
        if (value <= b) {
          e.bucketValues[b]! += 1;
          break;
        }
      }
      e.sum += value;
      e.count += 1;
      return;
    }
    this.histogram.observe(this.labels, value);
    this.entry = entryOf(map, this.labels);
    this.map = map;
  }
}
