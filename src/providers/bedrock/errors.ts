import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { codeForUpstreamStatus, errorBodyText, parseRetryAfter, rawErrorMessage, type UpstreamAnswer } from "../shared/upstream-errors.js";


interface Mapping {
  readonly code: Code;
  /** The HTTP status a Spillway client sees. */
  readonly status: number;
  readonly reason: string;
  readonly retryable: boolean;
}

const AUTH: Mapping = { code: Code.Unauthenticated, status: 401, reason: "invalid_api_key", retryable: false };
const SERVER: Mapping = { code: Code.Unavailable, status: 502, reason: "upstream_error", retryable: true };

/**
 * Bedrock Runtime's error shapes (HTTP `x-amzn-ErrorType`, or the
 * `:exception-type` of an exception frame inside a 200 stream; the stream
 * spells them lowerCamel, so keys are lower-cased) and what each becomes.
 * Credentials AWS does not accept (unknown key, bad signature, expired
 * token) are the gateway's configuration at fault: 401, like a bad key
 * elsewhere. Bedrock's own server trouble (internal, unavailable, model
 * errors) is a retryable 502.
 */
const BY_TYPE: Readonly<Record<string, Mapping>> = {
  validationexception: { code: Code.InvalidArgument, status: 400, reason: "invalid_request", retryable: false },
  serializationexception: { code: Code.InvalidArgument, status: 400, reason: "invalid_request", retryable: false },
  unrecognizedclientexception: AUTH,
  invalidsignatureexception: AUTH,
  incompletesignatureexception: AUTH,
  missingauthenticationtokenexception: AUTH,
  expiredtokenexception: AUTH,
  invalidclienttokenid: AUTH,
  signaturedoesnotmatch: AUTH,
  accessdeniedexception: { code: Code.PermissionDenied, status: 403, reason: "permission_denied", retryable: false },
  resourcenotfoundexception: { code: Code.NotFound, status: 404, reason: "model_not_found", retryable: false },
  throttlingexception: { code: Code.ResourceExhausted, status: 429, reason: "rate_limit_exceeded", retryable: true },
  servicequotaexceededexception: { code: Code.ResourceExhausted, status: 429, reason: "quota_exceeded", retryable: false },
  modeltimeoutexception: { code: Code.DeadlineExceeded, status: 504, reason: "timeout", retryable: true },
  modelnotreadyexception: { code: Code.Unavailable, status: 502, reason: "model_not_ready", retryable: true },
  serviceunavailableexception: { code: Code.Unavailable, status: 502, reason: "upstream_overloaded", retryable: true },
  internalserverexception: SERVER,
  modelstreamerrorexception: SERVER,
  modelerrorexception: SERVER,
};

function byStatus(status: number): Mapping {
  if (status >= 500) return SERVER;
  if (status === 401 || status === 403) return status === 401 ? AUTH : { code: Code.PermissionDenied, status, reason: "permission_denied", retryable: false };
  return { code: codeForUpstreamStatus(status), status, reason: "upstream_error", retryable: status === 429 || status === 408 };
}

/** The mapping of one Bedrock error type (`ThrottlingException`, `throttlingException`, `…:http://…`), if known. */
function mappingOf(errorType: string): Mapping | undefined {
  return BY_TYPE[errorType.split(":")[0]!.trim().toLowerCase()];
}

/**
 * A SpillwayError for a Bedrock error of type `errorType`, falling back on
 * `status` for types the table does not know (502 for anything 5xx).
 */
export function bedrockError(provider: string, errorType: string, message: string, status?: number, retryAfterMs?: number): SpillwayError {
  const name = errorType.split(":")[0]!.trim();
  const m = mappingOf(errorType) ?? byStatus(status ?? 502);
  return new SpillwayError(m.code, `${provider}: ${message || name || "upstream error"}${name ? ` (${name})` : ""}`, {
    httpStatus: m.status,
    reason: m.reason,
    retryable: m.retryable,
    retryAfterMs,
    fromUpstream: true,
  });
}

/**
 * Turns Bedrock's non-2xx answer (`{"message": …}` with the error's name in
 * the `x-amzn-ErrorType` header or the body's `__type`) into a
 * SpillwayError, see {@link bedrockError}; `Retry-After` is kept.
 */
export async function bedrockHttpError(provider: string, res: UpstreamAnswer): Promise<SpillwayError> {
  const text = await errorBodyText(res);
  let errorType = res.headers.get("x-amzn-errortype") ?? "";
  let message = rawErrorMessage(text, res.statusText);
  try {
    const j = JSON.parse(text) as { message?: unknown; Message?: unknown; __type?: unknown };
    const msg = j.message ?? j.Message;
    if (typeof msg === "string") message = msg;
    if (!errorType && typeof j.__type === "string") errorType = j.__type.split("#").at(-1)!;
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  return bedrockError(provider, errorType, message, res.status, parseRetryAfter(res.headers.get("retry-after")));
}
