import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";

/** Settings of {@link AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /** Event-loop delay (p99 over a sample, ms) above which the process counts as past its capacity. */
  readonly targetDelayMs: number;
  /** The limit never goes below this many streams. */
  readonly minLimit: number;
  /** How long a stream over the limit may wait for a slot before it is refused (ms). */
  readonly queueMs: number;
  /** Sampling period (ms). Default 250. */
  readonly sampleMs?: number;
}

/** A slot: release it once when the stream ends. */
export type Release = () => void;

/**
 * Adaptive concurrency for one process (in the spirit of Envoy's adaptive
 * concurrency filter and Netflix's gradient limiter), measured by the event
 * loop's delay — the one signal that says this process, not an upstream, is
 * the bottleneck (a slow upstream raises time to first chunk but leaves the
 * loop idle).
 *
 * Unlimited while the loop keeps up. When two samples in a row (one could be
 * a burst of arrivals) have their p99 delay over `targetDelayMs`, the limit
 * drops to 90% of the streams open (never below `minLimit`); while the loop
 * stays over the target it keeps dropping by 10%;
 * once it is under half the target the limit grows by 25% a sample and is
 * lifted when it is four times what is open. A stream over the limit waits
 * up to `queueMs` for a slot, then is refused at once (503 + Retry-After /
 * UNAVAILABLE), so past capacity the process keeps serving at capacity
 * instead of slowing every stream until most fail.
 *
 * Doors ask for a slot early and synchronously through `Admission.enter`
 * ({@link enter}, {@link hasRoom}, {@link canQueue}); every refusal is the
 * one shared, stackless {@link OVERLOADED}.
 *
 * Long-lived streams count while open, but cannot starve new ones for long:
 * the limit follows the loop, not the count — streams that are open but idle
 * (a realtime session between turns, a slow upstream) cost the loop nothing,
 * so it stays under the target and the limit climbs back over them within
 * seconds.
 */
export class AdaptiveLimit {
  /** The current limit (Infinity while unlimited). */
  limit = Infinity;
  /** Streams holding a slot. */
  inflight = 0;
  /** p99 loop delay of the last sample (ms). */
  delayMs = 0;
  private readonly waiters: Array<() => void> = [];
  /** Consecutive samples over the target. */
  private over = 0;
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: AdaptiveLimitOptions) {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.update(this.histogram.percentile(99) / 1e6);
      this.histogram.reset();
    }, o.sampleMs ?? 250);
    this.timer.unref();
  }

  /** Applies one sample of the loop's p99 delay (ms): the timer's work, callable from tests. */
  update(delayMs: number): void {
    this.delayMs = delayMs;
    this.over = delayMs > this.o.targetDelayMs ? this.over + 1 : 0;
    // One slow sample is a burst (a thousand connections arriving at once);
    // two in a row is a process past its capacity.
    if (this.over >= 2) {
      this.limit = Math.max(this.o.minLimit, Math.floor(Math.min(this.limit, this.inflight) * 0.9));
    } else if (this.limit !== Infinity && delayMs < this.o.targetDelayMs / 2) {
      this.limit = Math.ceil(this.limit * 1.25);
      if (this.limit >= 4 * Math.max(this.inflight, this.o.minLimit)) this.limit = Infinity;
    }
    this.wake();
  }

  /** A slot for a new stream, at once, after a short wait, or a refusal (`Unavailable`, 503, Retry-After 1 s). */
  async acquire(): Promise<Release> {
    return this.enter();
  }

  /**
   * A slot for a new stream: returned at once while there is room (no
   * promise, no allocation beyond the release), a promise while it waits in
   * the queue (at most `queueMs`, then it rejects with {@link OVERLOADED}),
   * or {@link OVERLOADED} thrown at once when the queue is full (it holds at
   * most `max(minLimit, limit)` waiters; none with `queueMs` 0).
   */
  enter(): Release | Promise<Release> {
    if (this.hasRoom()) {
      this.inflight++;
      return this.releaser();
    }
    if (!this.canQueue()) throw OVERLOADED;
    // A waiter is woken with its slot already counted.
    return this.wait().then(() => this.releaser());
  }

  /** Whether a stream arriving now, with no slot free, would wait in the queue (rather than be refused at once). */
  canQueue(): boolean {
    return this.o.queueMs > 0 && this.waiters.length < Math.max(this.o.minLimit, this.limit === Infinity ? 0 : this.limit);
  }

  /** Whether a stream arriving now would get a slot at once (nothing is taken). */
  hasRoom(): boolean {
    return this.inflight < this.limit && this.waiters.length === 0;
  }

  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inflight--;
      this.wake();
    };
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
    for (const w of this.waiters.splice(0)) w();
  }

  private wait(): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(OVERLOADED);
      }, this.o.queueMs);
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.inflight < this.limit) {
      this.inflight++;
      this.waiters.shift()!();
    }
  }
}

/**
 * Builds an error without capturing a stack: for refusals, which are
 * expected, frequent under overload, and whose stack says nothing.
 */
export function stackless<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The one refusal of {@link AdaptiveLimit} (`Unavailable`, HTTP 503,
 * Retry-After 1 s, reason `server_overloaded`): built once, without a stack,
 * so a refusal allocates nothing. Its fields are read-only; share it freely.
 */
export const OVERLOADED: SpillwayError = stackless(
  () =>
    new SpillwayError(Code.Unavailable, "The gateway is past its capacity right now; try again shortly.", {
      reason: "server_overloaded",
      retryAfterMs: 1000,
      httpStatus: 503,
    }),
);
