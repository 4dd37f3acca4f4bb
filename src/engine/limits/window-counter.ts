const BUCKETS = 60;

/**
 * A sliding one-minute counter in one-second buckets: O(1) to add, O(60) to
 * sum, no timers. Used for requests and tokens per minute.
 */
export class WindowCounter {
  private readonly counts = new Float64Array(BUCKETS);
  private readonly seconds = new Float64Array(BUCKETS).fill(-1);

  /** Adds `n` at time `nowMs`. */
  add(n: number, nowMs: number): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % BUCKETS;
    if (this.seconds[i] !== sec) {
      this.seconds[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /** The total over the last minute. */
  sum(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) if (sec - this.seconds[i]! < BUCKETS) total += this.counts[i]!;
    return total;
  }

  /** Milliseconds until the oldest counted second leaves the window. */
  msUntilRelief(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let oldest = sec;
    for (let i = 0; i < BUCKETS; i++) {
      const s = this.seconds[i]!;
      if (sec - s < BUCKETS && this.counts[i]! > 0 && s < oldest) oldest = s;
    }
    return Math.max(1000, (oldest + BUCKETS) * 1000 - nowMs);
  }
}
