import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { isObj, str } from "../shared/json.js";
import { codeForUpstreamStatus, errorBodyText, parseRetryAfter, rawErrorMessage, type UpstreamAnswer } from "../shared/upstream-errors.js";


interface Mapping {
  readonly code: Code;
  readonly status: number;
  readonly reason: string;
  readonly retryable: boolean;
}

/**
 * Google's canonical error statuses (`{"error":{"code","message","status"}}`,
 * https://ai.google.dev/gemini-api/docs/troubleshooting) and what each
 * becomes: the engine code, the HTTP status a Spillway client sees, the
 * machine-readable reason, and whether trying again may help. Upstream
 * server trouble (INTERNAL, UNAVAILABLE — Gemini's "model is overloaded") is
 * a retryable 502; an invalid API key, which Google reports as a 400
 * `INVALID_ARGUMENT` with reason `API_KEY_INVALID`, is a 401 (see
 * {@link googleError}).
 */
const BY_STATUS: Readonly<Record<string, Mapping>> = {
  INVALID_ARGUMENT: { code: Code.InvalidArgument, status: 400, reason: "invalid_request", retryable: false },
  FAILED_PRECONDITION: { code: Code.FailedPrecondition, status: 400, reason: "failed_precondition", retryable: false },
  OUT_OF_RANGE: { code: Code.InvalidArgument, status: 400, reason: "invalid_request", retryable: false },
  UNAUTHENTICATED: { code: Code.Unauthenticated, status: 401, reason: "invalid_api_key", retryable: false },
  PERMISSION_DENIED: { code: Code.PermissionDenied, status: 403, reason: "permission_denied", retryable: false },
  NOT_FOUND: { code: Code.NotFound, status: 404, reason: "not_found", retryable: false },
  ABORTED: { code: Code.Aborted, status: 409, reason: "upstream_aborted", retryable: true },
  RESOURCE_EXHAUSTED: { code: Code.ResourceExhausted, status: 429, reason: "rate_limit_exceeded", retryable: true },
  CANCELLED: { code: Code.Unavailable, status: 502, reason: "upstream_error", retryable: true },
  INTERNAL: { code: Code.Unavailable, status: 502, reason: "upstream_error", retryable: true },
  UNKNOWN: { code: Code.Unavailable, status: 502, reason: "upstream_error", retryable: true },
  UNAVAILABLE: { code: Code.Unavailable, status: 502, reason: "upstream_overloaded", retryable: true },
  DEADLINE_EXCEEDED: { code: Code.DeadlineExceeded, status: 504, reason: "timeout", retryable: true },
};

/** ErrorInfo reasons that mean the key itself was refused, whatever the status says. */
const BAD_KEY_REASONS = new Set(["API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_INVALID"]);

function byHttpStatus(status: number): Mapping {
  if (status >= 500) return BY_STATUS["INTERNAL"]!;
  return { code: codeForUpstreamStatus(status), status, reason: "upstream_error", retryable: status === 429 || status === 408 };
}

/** The `reason`s of a Google error's `details[]` (google.rpc.ErrorInfo). */
function detailReasons(details: unknown): string[] {
  return Array.isArray(details) ? details.flatMap((d) => (isObj(d) && typeof d["reason"] === "string" ? [d["reason"]] : [])) : [];
}

/** `google.rpc.RetryInfo.retryDelay` (`"37s"`, `"1.5s"`) of a Google error's details, in ms. */
function retryInfoMs(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const d of details) {
    const delay = isObj(d) ? /^(\d+(?:\.\d+)?)s$/.exec(str(d["retryDelay"])) : null;
    if (delay) return Number(delay[1]) * 1000;
  }
  return undefined;
}

/**
 * A SpillwayError for a Google error object (`{code, message, status,
 * details}`), found by its `status` name, else by its numeric `code` or the
 * HTTP status. The upstream's message is kept, prefixed with the provider
 * name; the wait is `retryAfterMs` (the `Retry-After` header) or else the
 * body's `RetryInfo.retryDelay`. Never throws.
 */
export function googleError(provider: string, error: unknown, httpStatus?: number, retryAfterMs?: number): SpillwayError {
  const e = isObj(error) ? error : {};
  const numeric = typeof e["code"] === "number" ? e["code"] : undefined;
  let m = (Object.hasOwn(BY_STATUS, str(e["status"])) ? BY_STATUS[str(e["status"])] : undefined) ?? byHttpStatus(httpStatus ?? numeric ?? 502);
  if (detailReasons(e["details"]).some((r) => BAD_KEY_REASONS.has(r))) m = BY_STATUS["UNAUTHENTICATED"]!;
  const message = str(e["message"]) || str(e["status"]) || "upstream error";
  return new SpillwayError(m.code, `${provider}: ${message}`, {
    httpStatus: m.status,
    reason: m.reason,
    retryable: m.retryable,
    retryAfterMs: retryAfterMs ?? retryInfoMs(e["details"]),
    fromUpstream: true,
  });
}

/**
 * Turns Google's non-2xx answer into a SpillwayError (see {@link googleError}).
 * The body may be an object or, on the streaming route without `alt=sse`,
 * an array holding one; a body that is not JSON keeps its text as the message.
 * `Retry-After` is honoured when the upstream sends it.
 */
export async function googleHttpError(provider: string, res: UpstreamAnswer): Promise<SpillwayError> {
  const text = await errorBodyText(res);
  let error: unknown = { message: rawErrorMessage(text, res.statusText) };
  try {
    let j: unknown = JSON.parse(text);
    if (Array.isArray(j)) j = j[0];
    if (isObj(j) && isObj(j["error"])) error = j["error"];
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  return googleError(provider, error, res.status, parseRetryAfter(res.headers.get("retry-after")));
}
