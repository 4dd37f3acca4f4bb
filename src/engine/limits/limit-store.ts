/** The per-key limits a store enforces. */
export interface KeyLimits {
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  readonly maxConcurrentStreams?: number | undefined;
}

/** Why a store refused a stream, and when to try again. */
export interface LimitRejection {
  readonly limit: "streams" | "rpm" | "tpm";
  readonly retryAfterMs: number;
}

/**
 * Where gateway-key usage is counted: requests and tokens per sliding minute
 * and streams open per key. In memory for one process; in Redis to share the
 * counts between workers and instances.
 */
export interface LimitStore {
  /**
   * Atomically checks `key` against `limits` and, when within them, counts
   * one request and one open stream under `leaseId` (which expires after
   * `leaseTtlMs` should its holder die). Resolves with the rejection, or
   * undefined when admitted.
   */
  admit(key: string, limits: KeyLimits, leaseId: string, leaseTtlMs: number): Promise<LimitRejection | undefined>;
  /** Ends the stream `leaseId` and charges the tokens it used. */
  release(key: string, leaseId: string, tokens: number): Promise<void>;
  /** Closes connections (no-op in memory). */
  close(): Promise<void>;
}
