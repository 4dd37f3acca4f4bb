import { performance, type EventLoopUtilization } from "node:perf_hooks";

/** How often the event loop's utilization is sampled (ms). */
const SAMPLE_MS = 250;
/** Consecutive busy samples before the process counts as overloaded. */
const BUSY_SAMPLES = 2;

/**
 * Watches this process's event-loop utilization (the share of time the loop
 * was running callbacks rather than waiting) so that admission can shed new
 * streams while the process is saturated: past its capacity every stream
 * slows together and, open loop, the backlog grows until most of them fail
 * (the gRPC door at twice its capacity in docs/PERFORMANCE.md). `busy()` is
 * true while the last {@link BUSY_SAMPLES} samples were all at or above the
 * threshold. One unref'd timer; nothing per request but a field read.
 */
export class LoadMonitor {
  /** Utilization of the last sample, 0..1. */
  utilization = 0;
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private over = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly threshold: number) {
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.utilization = performance.eventLoopUtilization(now, this.last).utilization;
      this.last = now;
      this.over = this.utilization >= this.threshold ? this.over + 1 : 0;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  /** Whether new streams should be refused now. */
  busy(): boolean {
    return this.over >= BUSY_SAMPLES;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.timer);
  }
}
