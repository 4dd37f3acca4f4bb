import type { SpillwayError } from "../../../../engine/errors.js";
import { httpStatusOf } from "../../status.js";

/** Anthropic's error object: `{ type, message }` (https://docs.anthropic.com/en/api/errors). */
export interface AnthropicErrorObject {
  type: string;
  message: string;
}

/** Engine reasons that mean "no capacity right now", which Anthropic answers with 529 `overloaded_error`. */
const OVERLOADED = new Set(["server_overloaded", "upstream_overloaded", "provider_unavailable"]);

/**
 * Anthropic's status and error `type` for an engine error. The engine's HTTP
 * table gives the status, Anthropic's list the type:
 * 400 (and 405, 409, 415, other 4xx) `invalid_request_error`, 401
 * `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
 * `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504
 * `timeout_error`, other 5xx `api_error`. Lack of capacity — the engine's
 * reasons `server_overloaded` (the gateway at its stream limit or shedding
 * load), `upstream_overloaded` (an upstream Anthropic's own 529) and
 * `provider_unavailable` (a provider whose circuit is open) — is 529
 * `overloaded_error`, which the Anthropic SDKs and Claude Code retry as
 * "overloaded". Other unavailability (a gateway shutting down, an upstream
 * connection that broke) keeps its 502/503 as `api_error`. A cancelled
 * request (499, the client left) is `api_error`.
 */
export function anthropicStatusAndType(err: SpillwayError): { status: number; type: string } {
  if (err.reason && OVERLOADED.has(err.reason)) return { status: 529, type: "overloaded_error" };
  const status = httpStatusOf(err);
  switch (status) {
    case 401:
      return { status, type: "authentication_error" };
    case 402:
      return { status, type: "billing_error" };
    case 403:
      return { status, type: "permission_error" };
    case 404:
      return { status, type: "not_found_error" };
    case 413:
      return { status, type: "request_too_large" };
    case 429:
      return { status, type: "rate_limit_error" };
    case 504:
      return { status, type: "timeout_error" };
    case 529:
      return { status, type: "overloaded_error" };
    default:
      return { status, type: status >= 400 && status < 499 ? "invalid_request_error" : "api_error" };
  }
}

/** Anthropic's error object for an engine error. */
export function anthropicErrorObject(err: SpillwayError): AnthropicErrorObject {
  return { type: anthropicStatusAndType(err).type, message: err.message };
}

/** Anthropic's error body, `{"type":"error","error":{"type","message"}}`, as JSON text. */
export function anthropicErrorBody(err: SpillwayError): string {
  return JSON.stringify({ type: "error", error: anthropicErrorObject(err) });
}
