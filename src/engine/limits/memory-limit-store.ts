import type { KeyLimits, LimitRejection, LimitStore } from "./limit-store.js";
import { WindowCounter } from "./window-counter.js";

interface KeyUsage {
  readonly requests: WindowCounter;
  readonly tokens: WindowCounter;
  readonly leases: Set<string>;
}

/** A {@link LimitStore} in this process's memory: the default for a single process. */
export class MemoryLimitStore implements LimitStore {
  private readonly usage = new Map<string, KeyUsage>();

  constructor(private readonly now: () => number = Date.now) {}

  private of(key: string): KeyUsage {
    let u = this.usage.get(key);
    if (!u) this.usage.set(key, (u = { requests: new WindowCounter(), tokens: new WindowCounter(), leases: new Set() }));
    return u;
  }

  admit(key: string, limits: KeyLimits, leaseId: string): Promise<LimitRejection | undefined> {
    const u = this.of(key);
    const now = this.now();
    let rejection: LimitRejection | undefined;
    if (limits.maxConcurrentStreams !== undefined && u.leases.size >= limits.maxConcurrentStreams) {
      rejection = { limit: "streams", retryAfterMs: 1000 };
    } else if (limits.rpm !== undefined && u.requests.sum(now) >= limits.rpm) {
      rejection = { limit: "rpm", retryAfterMs: u.requests.msUntilRelief(now) };
    } else if (limits.tpm !== undefined && u.tokens.sum(now) >= limits.tpm) {
      rejection = { limit: "tpm", retryAfterMs: u.tokens.msUntilRelief(now) };
    } else {
      u.requests.add(1, now);
      u.leases.add(leaseId);
    }
    return Promise.resolve(rejection);
  }

  release(key: string, leaseId: string, tokens: number): Promise<void> {
    const u = this.of(key);
    u.leases.delete(leaseId);
    if (tokens > 0) u.tokens.add(tokens, this.now());
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
