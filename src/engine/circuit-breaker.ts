/** Settings of a {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly threshold: number;
  /** How long an open circuit rejects calls before letting one trial through (ms). */
  readonly cooldownMs: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

interface State {
  failures: number;
  openUntil: number;
  trialInFlight: boolean;
}

/**
 * Per-provider circuit breakers. A provider that fails `threshold` times in a
 * row is skipped for `cooldownMs`; then one trial call is let through (half
 * open): its success closes the circuit, its failure opens it again.
 * State is per process (documented: each worker keeps its own).
 */
export class CircuitBreaker {
  private readonly states = new Map<string, State>();
  private readonly now: () => number;

  constructor(private readonly opts: CircuitBreakerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Whether a call to `key` may go ahead now. Claims the trial slot when half open. */
  allow(key: string): boolean {
    const s = this.states.get(key);
    if (!s || s.failures < this.opts.threshold) return true;
    if (this.now() < s.openUntil || s.trialInFlight) return false;
    s.trialInFlight = true;
    return true;
  }

  /** Whether `key`'s circuit is open (calls are being skipped). */
  isOpen(key: string): boolean {
    const s = this.states.get(key);
    return !!s && s.failures >= this.opts.threshold && (this.now() < s.openUntil || s.trialInFlight);
  }

  /** Records a success: closes the circuit. */
  success(key: string): void {
    this.states.delete(key);
  }

  /** Records a failure; opens the circuit at the threshold (again, after a failed trial). */
  failure(key: string): void {
    let s = this.states.get(key);
    if (!s) this.states.set(key, (s = { failures: 0, openUntil: 0, trialInFlight: false }));
    s.failures++;
    s.trialInFlight = false;
    if (s.failures >= this.opts.threshold) s.openUntil = this.now() + this.opts.cooldownMs;
  }
}
