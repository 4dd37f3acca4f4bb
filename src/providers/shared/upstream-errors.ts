/**
 * Upstream failures as the engine's errors: a connection that fails, a
 * non-2xx answer (status → code, the vendor's message, `Retry-After`), a
 * stream that breaks off or ends early, an answer too large or not JSON.
 * Every provider maps its upstream's failures through these (or its own
 * error table on top of them).
 */
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { gatewayOutOfDescriptors, outOfDescriptors } from "../../engine/limits/out-of-descriptors.js";
import type { AbortSource } from "../../engine/signals.js";

/** Most bytes of an upstream error body that are read. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Most bytes of a whole (non-streamed) 2xx answer that are gathered: past it the answer is an error, not memory. */
export const MAX_WHOLE_ANSWER = 64 * 1024 * 1024;

/** Most characters of an error body that is not JSON kept as the error's message. */
const MAX_RAW_MESSAGE = 2000;

/** What {@link upstreamError} reads of an answer: every answer type of the upstream clients is one. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
  /** The body's first `max` bytes, the rest not read (answers still streaming have it). */
  textUpTo?(max: number): Promise<string>;
}

/** Maps a fetch failure: the call's abort reason when aborted (a signal, or an {@link AbortSource}), else `Unavailable`. */
export function connectionError(provider: string, e: unknown, signal: AbortSignal | AbortSource): SpillwayError {
  if (signal.aborted) return SpillwayError.from(signal instanceof AbortSignal ? signal.reason : signal.abortReason);
  if (e instanceof SpillwayError) return e;
  if (outOfDescriptors(e)) return gatewayOutOfDescriptors(provider);
  const detail = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
  return new SpillwayError(Code.Unavailable, `${provider}: upstream unreachable (${detail})`, {
    httpStatus: 502,
    reason: "upstream_unreachable",
    fromUpstream: true,
    cause: e,
  });
}

/** Maps an upstream's error status to the gRPC-style code the engine uses. */
export function codeForUpstreamStatus(status: number): Code {
  if (status === 400 || status === 422) return Code.InvalidArgument;
  if (status === 401) return Code.Unauthenticated;
  if (status === 403) return Code.PermissionDenied;
  if (status === 404) return Code.NotFound;
  if (status === 408 || status === 504) return Code.DeadlineExceeded;
  if (status === 413) return Code.ResourceExhausted;
  if (status === 429) return Code.ResourceExhausted;
  return Code.Unavailable;
}

/** Parses a `Retry-After` header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}


/** The error for a whole answer longer than {@link MAX_WHOLE_ANSWER}: the upstream's fault, a 502. */
export function answerTooLarge(provider: string): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream's answer is larger than ${MAX_WHOLE_ANSWER / (1024 * 1024)} MiB, the most the gateway reads`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
  });
}

/**
 * A non-2xx answer's body as text, at most {@link MAX_ERROR_BODY} bytes of
 * it read (an upstream or proxy that sends megabytes, or never ends its
 * error body, costs no more). Best effort: "" when the body fails, for the
 * status alone still says what happened.
 */
export async function errorBodyText(res: UpstreamAnswer): Promise<string> {
  try {
    if (res.textUpTo) return await res.textUpTo(MAX_ERROR_BODY);
    return (await res.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    return "";
  }
}

/**
 * The message of an error body that is not the vendor's JSON (a proxy's
 * HTML page, plain text): its text trimmed to {@link MAX_RAW_MESSAGE}
 * characters, or the status text when empty.
 */
export function rawErrorMessage(text: string, statusText: string): string {
  const t = text.trim();
  if (!t) return statusText;
  return t.length > MAX_RAW_MESSAGE ? `${t.slice(0, MAX_RAW_MESSAGE)}…` : t;
}

/**
 * Turns an upstream's non-2xx response into a SpillwayError carrying the
 * upstream's message. 4xx statuses pass through (the client sent something
 * the upstream refused); 5xx become 502 (`upstream_error`), retryable.
 */
export async function upstreamError(provider: string, res: UpstreamAnswer): Promise<SpillwayError> {
  const text = await errorBodyText(res);
  let message = rawErrorMessage(text, res.statusText);
  let param: string | undefined;
  let code: string | undefined;
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } };
    const err = j.error;
    if (err && typeof err === "object") {
      if (typeof err.message === "string") message = err.message;
      if (typeof err.param === "string") param = err.param;
      if (typeof err.code === "string") code = err.code;
    }
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  const is5xx = res.status >= 500;
  return new SpillwayError(codeForUpstreamStatus(res.status), `${provider}: ${message}`, {
    httpStatus: is5xx ? 502 : res.status,
    param,
    reason: is5xx ? "upstream_error" : code,
    retryable: is5xx || res.status === 429 || res.status === 408,
    retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
    fromUpstream: true,
  });
}

/**
 * The error for an upstream stream that failed while being read: the call's
 * abort reason when it was aborted, a SpillwayError as it is, anything else
 * (a reset socket, a body that ended in the middle of a frame) a retryable
 * `Unavailable` that says the stream broke off.
 */
export function streamReadError(provider: string, e: unknown, signal: AbortSignal | AbortSource): SpillwayError {
  if (signal.aborted) return SpillwayError.from(signal instanceof AbortSignal ? signal.reason : signal.abortReason);
  if (e instanceof SpillwayError) return e;
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream stream broke off (${(e as Error).message})`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
    cause: e,
  });
}

/**
 * The error for an upstream stream that ended without its end marker
 * (`[DONE]`, `message_stop`, `response.completed`): a truncation, never to
 * be passed off as a complete answer. `what` says what was missing.
 */
export function upstreamTruncated(provider: string, what: string): SpillwayError {
  return new SpillwayError(Code.DataLoss, `${provider}: the upstream closed the stream before ${what}`, {
    httpStatus: 502,
    reason: "upstream_truncated",
    fromUpstream: true,
  });
}

/** Maps an upstream's non-2xx answer to its error ({@link upstreamError}, or a provider's own, e.g. Anthropic's error object). */
export type UpstreamErrorMapper = (provider: string, res: UpstreamAnswer) => Promise<SpillwayError>;

/** The error for a whole answer whose body is not JSON: the upstream's fault, a 502. */
export function answerNotJson(provider: string, e: unknown): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream's answer is not JSON (${(e as Error).message})`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
  });
}

