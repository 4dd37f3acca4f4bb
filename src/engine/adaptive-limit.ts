import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from "node:perf_hooks";
import { Code } from "./code.js";
import { SpillwayError, stackless } from "./errors.js";

/** Settings of {@link AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /** Event-loop delay (the worst of a sample, ms) above which the process counts as past its capacity. */
  readonly targetDelayMs: number;
  /** The limit never goes below this many streams. */
  readonly minLimit: number;
  /**
   * The limit never goes above this many streams (default: none — unlimited
   * while the loop keeps up). With `minLimit` equal to it the limit is fixed.
   */
  readonly maxLimit?: number | undefined;
  /** How long a stream over the limit may wait for a slot before it is refused (ms). */
  readonly queueMs: number;
  /** Sampling period (ms). Default 25. */
  readonly sampleMs?: number;
  /**
   * Event-loop utilization (0..1) at or above which the loop has no room
   * left: the limit holds instead of growing. Default 0.98.
   */
  readonly roomUtilization?: number;
  /**
   * No cut for this long (ms) after the first sample with a stream open: a
   * process's first load runs cold code (the JIT compiles it then), and
   * that start-up loop delay is not overload. Default 0 (no warm-up; the
   * gateway sets `limits.adaptiveConcurrency.warmupMs`, 2 s).
   */
  readonly warmupMs?: number | undefined;
  /** The clock (ms) the warm-up is measured with. Default `performance.now`. */
  readonly now?: (() => number) | undefined;
  /**
   * Who takes the samples: `"timer"` (default: every `sampleMs` from the
   * event loop's histogram and ELU) or `"manual"` (none: only {@link
   * AdaptiveLimit.update} calls, e.g. a test's own samples).
   */
  readonly sampler?: "timer" | "manual" | undefined;
  /**
   * Which loop-delay statistic of a sample is compared with `targetDelayMs`:
   * `"max"` (default: the worst delay of the sample) or `"mean"` (its mean
   * delay: one long pause, a GC or a burst of arrivals, weighs less).
   */
  readonly signal?: LoopDelaySignal | undefined;
}

/** The loop-delay statistic that drives {@link AdaptiveLimit}: the worst of a sample, or its mean. */
export type LoopDelaySignal = "max" | "mean";

/** One sample's loop delay (ms), both statistics: {@link AdaptiveLimit.sample} picks the configured one. */
export interface LoopDelaySample {
  /** Worst delay of the sample (ms). */
  readonly maxMs: number;
  /** Mean delay of the sample (ms). */
  readonly meanMs: number;
}

/** A slot: release it once when the stream ends. */
export type Release = () => void;

/** Default sampling period (ms): a process at 4× its capacity builds a backlog of seconds within a few 250 ms samples. */
const SAMPLE_MS = 25;
/** Utilization under which a late loop is not counted as over the target: it was descheduled, not busy. */
const BUSY_UTILIZATION = 0.5;
/** The loop's delay is read every this many ms within a sample. */
const RESOLUTION_MS = 5;

/**
 * Adaptive concurrency for one process (in the spirit of Envoy's adaptive
 * concurrency filter and Netflix's gradient limiter), measured by the event
 * loop — the one signal that says this process, not an upstream, is the
 * bottleneck (a slow upstream raises time to first chunk but leaves the
 * loop idle).
 *
 * Every `sampleMs` (25 ms) it reads the loop's worst delay over the sample
 * (a 5 ms-resolution histogram, and the sampler's own lateness, so a loop
 * blocked for the whole sample is seen too) and its utilization (ELU).
 * Unlimited while the loop keeps up. When two samples in a row (one could be
 * a burst of arrivals, or a GC pause) are over `targetDelayMs` with the loop
 * at least half busy (a late but idle loop was descheduled by the host, not
 * held back by its streams) and at
 * least `minLimit` streams are open (fewer cannot be the cause), the limit
 * drops to 90% of the streams open, and no higher than the most streams the
 * loop recently carried while it kept up (its measured capacity, so the
 * first cut after a surge goes straight back to it instead of 10% at a
 * time); never below `minLimit`. While the loop stays over the target it
 * keeps dropping by 10% a sample — once the streams open are within the
 * limit (until then nothing new is let in anyway, and a deeper cut would
 * overshoot once they drain). Once the delay is within the target *and*
 * the loop has room (utilization under `roomUtilization`, 0.98) the
 * limit grows (×2.4 a second, whatever the sampling period), and is lifted
 * when it is four times what is open; a loop that keeps up but is nearly
 * full holds the limit where it is, which is what keeps it from
 * oscillating past its capacity. A stream over the limit waits up to
 * `queueMs` for a slot, then is refused at once (503 + Retry-After /
 * UNAVAILABLE), so past capacity the process keeps serving at capacity
 * instead of slowing every stream until most fail.
 *
 * Warm-up (`warmupMs`): no cut until the first sample with a stream open,
 * nor for `warmupMs` after it — a process's first load runs cold code, and
 * the JIT's start-up delay would otherwise read as overload and drop the
 * limit to `minLimit` (it then grows back, but refuses meanwhile).
 *
 * Doors ask for a slot early and synchronously through `Admission.enter`
 * ({@link enter}, {@link hasRoom}, {@link canQueue}); every refusal is the
 * one shared, stackless {@link OVERLOADED}.
 *
 * Long-lived streams count while open, but cannot starve new ones for long:
 * the limit follows the loop, not the count — streams that are open but idle
 * (a realtime session between turns, a slow upstream) cost the loop nothing,
 * so it stays under the target with room to spare and the limit climbs back
 * over them within seconds.
 */
export class AdaptiveLimit {
  /** The current limit (Infinity while unlimited). */
  limit = Infinity;
  /** Streams holding a slot. */
  inflight = 0;
  /** Worst loop delay of the last sample (ms). */
  delayMs = 0;
  /** Event-loop utilization of the last sample (0..1). */
  utilization = 0;
  /** Most streams open in a recent sample whose loop kept up (decays 1% a sample): the process's measured capacity. */
  carried = 0;
  private readonly waiters: Array<() => void> = [];
  /** Consecutive samples over the target. */
  private over = 0;
  private readonly histogram: IntervalHistogram | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** When the warm-up ends (clock ms): set at the first sample with a stream open; undefined before it. */
  private warmUntil: number | undefined;
  private readonly growth: number;
  private readonly room: number;

  /** {@link AdaptiveLimitOptions.maxLimit}, Infinity when none. */
  private readonly ceiling: number;

  /** {@link AdaptiveLimitOptions.signal}: which statistic of a sample drives the limit. */
  readonly signal: LoopDelaySignal;

  constructor(private readonly o: AdaptiveLimitOptions) {
    this.ceiling = o.maxLimit ?? Infinity;
    this.signal = o.signal ?? "max";
    this.limit = this.ceiling;
    const sampleMs = o.sampleMs ?? SAMPLE_MS;
    // 25% per 250 ms, at any sampling period (at most doubling per sample).
    this.growth = Math.min(2, 1.25 ** (sampleMs / 250));
    this.room = o.roomUtilization ?? 0.98;
    this.now = o.now ?? (() => performance.now());
    if (o.sampler === "manual") return;
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.histogram = histogram;
    histogram.enable();
    let last = performance.now();
    let elu: EventLoopUtilization = performance.eventLoopUtilization();
    this.timer = setInterval(() => {
      const now = performance.now();
      // The sampler is a timer too: when the loop was blocked it runs late, maybe before the histogram saw it.
      const late = now - last - sampleMs;
      last = now;
      const e = performance.eventLoopUtilization();
      const u = performance.eventLoopUtilization(e, elu).utilization;
      elu = e;
      // The histogram records whole intervals between its timer's runs: the delay is the excess over them.
      // A loop blocked for the whole sample leaves the histogram empty: its lateness is then the mean too.
      const maxMs = Math.max(0, histogram.max / 1e6 - RESOLUTION_MS, late);
      const meanMs = histogram.count > 0 ? Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS) : Math.max(0, late);
      this.sample({ maxMs, meanMs }, u);
      histogram.reset();
    }, sampleMs);
    this.timer.unref();
  }

  /**
   * True while cuts are held off: before the first sample with a stream
   * open (nothing has run hot yet), and for `warmupMs` after it.
   */
  get warmingUp(): boolean {
    const w = this.o.warmupMs ?? 0;
    if (w <= 0) return false;
    return this.warmUntil === undefined || this.now() < this.warmUntil;
  }

  /**
   * Applies one sample given both statistics of its loop delay: the one
   * {@link signal} names (`max` or `mean`) is passed to {@link update}.
   */
  sample(delay: LoopDelaySample, utilization?: number): void {
    this.update(this.signal === "mean" ? delay.meanMs : delay.maxMs, utilization);
  }

  /**
   * Applies one sample: the loop's delay (the statistic {@link signal} names) (ms) and its utilization
   * (0..1; when unknown, the loop counts as busy when late and as having
   * room when not). The timer's work, callable from tests.
   */
  update(delayMs: number, utilization?: number): void {
    this.delayMs = delayMs;
    this.utilization = utilization ?? 0;
    // The warm-up is counted from the first load: the JIT compiles the request paths when they first run.
    if (this.warmUntil === undefined && this.inflight > 0) this.warmUntil = this.now() + (this.o.warmupMs ?? 0);
    // A late loop that was mostly idle was not held back by its own work (the host
    // descheduled it): only a busy one counts as past its capacity.
    const busy = utilization === undefined || utilization >= BUSY_UTILIZATION;
    this.over = delayMs > this.o.targetDelayMs && busy ? this.over + 1 : 0;
    this.carried *= 0.99;
    // One slow sample is a burst (a thousand connections arriving at once) or a GC pause;
    // two in a row is a process past its capacity.
    // Fewer than minLimit streams open cannot be what holds the loop back (start-up, a
    // blocking call, another process): the limit is not lowered for them.
    // While more are open than the limit, nothing new is let in already: a further cut
    // would only bite once they have drained, and then overshoot (wait for it to bind).
    // Start-up delay (a cold JIT, module loading) is not overload: no cut while warming up.
    if (this.over >= 2 && this.inflight >= this.o.minLimit && this.inflight <= this.limit && !this.warmingUp) {
      let next = Math.floor(Math.min(this.limit, this.inflight) * 0.9);
      // The first cut after a surge: back to what the loop carried while it kept up.
      if (this.limit === Infinity && this.carried >= 1) next = Math.min(next, Math.floor(this.carried));
      this.limit = Math.min(this.ceiling, Math.max(this.o.minLimit, next));
    } else if (delayMs <= this.o.targetDelayMs) {
      if (delayMs < this.o.targetDelayMs / 2) this.carried = Math.max(this.carried, this.inflight);
      // Growth under the target, not only under half of it: on a host whose scheduler makes the
      // delay noisy, a limit that grew only in quiet samples ratcheted down (2x in docs/PERFORMANCE.md).
      if (this.limit < this.ceiling && (utilization ?? 0) < this.room) {
        this.limit = Math.min(this.ceiling, Math.ceil(this.limit * this.growth));
        if (this.limit >= 4 * Math.max(this.inflight, this.o.minLimit)) this.limit = this.ceiling;
      }
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
    if (this.timer) clearInterval(this.timer);
    this.histogram?.disable();
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
 * The one refusal of {@link AdaptiveLimit} (`Unavailable`, HTTP 503,
 * Retry-After 1 s, reason `server_overloaded`): built once, without a stack,
 * so a refusal allocates nothing. Its fields are read-only; share it freely.
 */
export const OVERLOADED: SpillwayError = stackless(
  () =>
    new SpillwayError(Code.Unavailable, "The gateway is past its capacity right now (its adaptive concurrency limit); try again shortly.", {
      reason: "server_overloaded",
      retryAfterMs: 1000,
      httpStatus: 503,
    }),
);
