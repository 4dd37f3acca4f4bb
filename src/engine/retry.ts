import { Code } from "./code.js";
import type { SpillwayError } from "./errors.js";

/** Retry settings. */
export interface RetryOptions {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
}

/**
 * The delay before attempt `attempt + 1`: exponential backoff with full
 * jitter, or the upstream's `Retry-After` when it gave one (never less).
 * Returns undefined when the wait would exceed `maxRetryAfterMs`: better to
 * try the next fallback than to hold the client that long.
 */
export function retryDelay(attempt: number, err: SpillwayError, o: RetryOptions, random = Math.random): number | undefined {
  const backoff = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1)) * random();
  if (err.retryAfterMs === undefined) return backoff;
  if (err.retryAfterMs > o.maxRetryAfterMs) return undefined;
  return Math.max(backoff, err.retryAfterMs);
}

/** Codes that may succeed on the same provider if tried again. */
export function isRetryable(err: SpillwayError): boolean {
  return err.retryable;
}

/**
 * Errors that another provider may not have: anything retryable, plus an
 * upstream's refusal of our key or model (401, 403, 404 from the upstream,
 * never from the client's own request).
 */
export function canFallBack(err: SpillwayError): boolean {
  if (err.retryable) return true;
  return (
    err.fromUpstream &&
    (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied || err.code === Code.NotFound || err.code === Code.Unimplemented)
  );
}
