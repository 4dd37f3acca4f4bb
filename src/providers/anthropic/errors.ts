import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { codeForUpstreamStatus, errorBodyText, parseRetryAfter, rawErrorMessage } from "../shared/upstream-errors.js";
import type { UpstreamAnswer } from "../shared/upstream-errors.js";


interface Mapping {
  readonly code: Code;
  readonly status: number;
  readonly reason: string;
  readonly retryable: boolean;
}

/**
 * Anthropic's error types (https://docs.anthropic.com/en/api/errors) and what
 * each becomes: the code, the HTTP status a Spillway client sees, OpenAI's
 * error `code`, and whether trying again may help. Upstream server trouble
 * (`api_error`) is a 502; `overloaded_error` (Anthropic's 529) a retryable 503.
 */
const BY_TYPE: Readonly<Record<string, Mapping>> = {
  invalid_request_error: { code: Code.InvalidArgument, status: 400, reason: "invalid_request", retryable: false },
  authentication_error: { code: Code.Unauthenticated, status: 401, reason: "invalid_api_key", retryable: false },
  billing_error: { code: Code.PermissionDenied, status: 402, reason: "insufficient_quota", retryable: false },
  permission_error: { code: Code.PermissionDenied, status: 403, reason: "permission_denied", retryable: false },
  not_found_error: { code: Code.NotFound, status: 404, reason: "not_found", retryable: false },
  request_too_large: { code: Code.ResourceExhausted, status: 413, reason: "request_too_large", retryable: false },
  rate_limit_error: { code: Code.ResourceExhausted, status: 429, reason: "rate_limit_exceeded", retryable: true },
  api_error: { code: Code.Unavailable, status: 502, reason: "upstream_error", retryable: true },
  timeout_error: { code: Code.DeadlineExceeded, status: 504, reason: "timeout", retryable: true },
  overloaded_error: { code: Code.Unavailable, status: 503, reason: "upstream_overloaded", retryable: true },
};

function byStatus(status: number): Mapping {
  if (status === 529) return BY_TYPE["overloaded_error"]!;
  if (status >= 500) return BY_TYPE["api_error"]!;
  const code = codeForUpstreamStatus(status);
  return { code, status, reason: "upstream_error", retryable: status === 429 || status === 408 };
}

/**
 * A SpillwayError for an Anthropic error of type `errorType` (falling back
 * on the HTTP `status` for types this table does not know), carrying the
 * upstream's message prefixed with the provider name. It is marked as the
 * upstream's answer, so a refused key or unknown model may fall back to
 * another provider and counts as a server error, not the client's.
 */
export function anthropicError(
  provider: string,
  errorType: string,
  message: string,
  status?: number,
  retryAfterMs?: number,
): SpillwayError {
  const m = (Object.hasOwn(BY_TYPE, errorType) ? BY_TYPE[errorType] : undefined) ?? byStatus(status ?? 502);
  return new SpillwayError(m.code, `${provider}: ${message || errorType || "upstream error"}`, {
    httpStatus: m.status,
    reason: m.reason,
    retryable: m.retryable,
    retryAfterMs,
    fromUpstream: true,
  });
}

/**
 * Turns Anthropic's non-2xx answer (`{"type":"error","error":{"type","message"}}`)
 * into a SpillwayError, see {@link anthropicError}.
 */
export async function anthropicHttpError(provider: string, res: UpstreamAnswer): Promise<SpillwayError> {
  const text = await errorBodyText(res);
  let errorType = "";
  let message = rawErrorMessage(text, res.statusText);
  try {
    const err = (JSON.parse(text) as { error?: { type?: unknown; message?: unknown } }).error;
    if (typeof err?.type === "string") errorType = err.type;
    if (typeof err?.message === "string") message = err.message;
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  return anthropicError(provider, errorType, message, res.status, parseRetryAfter(res.headers.get("retry-after")));
}
