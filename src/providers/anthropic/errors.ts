import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { codeForUpstreamStatus, parseRetryAfter } from "../shared/upstream-http.js";
import type { UpstreamResponse } from "../shared/upstream-http.js";

/** Most bytes of an Anthropic error body that are read. */
const MAX_ERROR_BODY = 64 * 1024;

interface Mapping {
  readonly code: Code;
  readonly status: number;
  readonly openAiCode: string;
  readonly retryable: boolean;
  readonly type?: string;
}

/**
 * Anthropic's error types (https://docs.anthropic.com/en/api/errors) and what
 * each becomes: the code, the HTTP status a Spillway client sees, OpenAI's
 * error `code`, and whether trying again may help. Upstream server trouble
 * (`api_error`) is a 502; `overloaded_error` (Anthropic's 529) a retryable 503.
 */
const BY_TYPE: Readonly<Record<string, Mapping>> = {
  invalid_request_error: { code: Code.InvalidArgument, status: 400, openAiCode: "invalid_request", retryable: false },
  authentication_error: { code: Code.Unauthenticated, status: 401, openAiCode: "invalid_api_key", retryable: false },
  billing_error: { code: Code.PermissionDenied, status: 402, openAiCode: "insufficient_quota", retryable: false, type: "insufficient_quota" },
  permission_error: { code: Code.PermissionDenied, status: 403, openAiCode: "permission_denied", retryable: false },
  not_found_error: { code: Code.NotFound, status: 404, openAiCode: "not_found", retryable: false },
  request_too_large: { code: Code.ResourceExhausted, status: 413, openAiCode: "request_too_large", retryable: false, type: "invalid_request_error" },
  rate_limit_error: { code: Code.ResourceExhausted, status: 429, openAiCode: "rate_limit_exceeded", retryable: true },
  api_error: { code: Code.Unavailable, status: 502, openAiCode: "upstream_error", retryable: true },
  timeout_error: { code: Code.DeadlineExceeded, status: 504, openAiCode: "timeout", retryable: true },
  overloaded_error: { code: Code.Unavailable, status: 503, openAiCode: "upstream_overloaded", retryable: true },
};

function byStatus(status: number): Mapping {
  if (status === 529) return BY_TYPE["overloaded_error"]!;
  if (status >= 500) return BY_TYPE["api_error"]!;
  const code = codeForUpstreamStatus(status);
  return { code, status, openAiCode: "upstream_error", retryable: status === 429 || status === 408 };
}

/**
 * A SpillwayError for an Anthropic error of type `errorType` (falling back
 * on the HTTP `status` for types this table does not know), carrying the
 * upstream's message prefixed with the provider name.
 */
export function anthropicError(
  provider: string,
  errorType: string,
  message: string,
  status?: number,
  retryAfterMs?: number,
): SpillwayError {
  const m = BY_TYPE[errorType] ?? byStatus(status ?? 502);
  return new SpillwayError(m.code, `${provider}: ${message || errorType || "upstream error"}`, {
    httpStatus: m.status,
    openAiCode: m.openAiCode,
    type: m.type,
    retryable: m.retryable,
    retryAfterMs,
  });
}

/**
 * Turns Anthropic's non-2xx answer (`{"type":"error","error":{"type","message"}}`)
 * into a SpillwayError, see {@link anthropicError}.
 */
export async function anthropicHttpError(provider: string, res: UpstreamResponse): Promise<SpillwayError> {
  let text = "";
  try {
    text = (await res.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    // The body is best effort: the status alone still says what happened.
  }
  let errorType = "";
  let message = text.trim() || res.statusText;
  try {
    const err = (JSON.parse(text) as { error?: { type?: unknown; message?: unknown } }).error;
    if (typeof err?.type === "string") errorType = err.type;
    if (typeof err?.message === "string") message = err.message;
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  return anthropicError(provider, errorType, message, res.status, parseRetryAfter(res.headers.get("retry-after")));
}
