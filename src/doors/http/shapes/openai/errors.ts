import { Code } from "../../../../engine/code.js";
import type { SpillwayError } from "../../../../engine/errors.js";
import { httpStatusOf } from "../../status.js";

/** OpenAI's error object: `{ message, type, param, code }`. */
export interface OpenAiErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/**
 * OpenAI's error `type` for an error, from its HTTP status (the status says
 * more than the code: a 413 is an invalid request, not a rate limit).
 * `insufficient_quota` keeps OpenAI's own type for it.
 */
export function openAiErrorType(err: SpillwayError): string {
  if (err.reason === "insufficient_quota") return "insufficient_quota";
  if (err.code === Code.Canceled) return "cancelled";
  const status = httpStatusOf(err);
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 501:
      return "not_implemented_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 400 && status < 500 ? "invalid_request_error" : "server_error";
  }
}

/** The OpenAI error object for an error (also the realtime door's `error` event payload). */
export function openAiErrorObject(err: SpillwayError, fallbackCode: string | null = null): OpenAiErrorObject {
  return { message: err.message, type: openAiErrorType(err), param: err.param ?? null, code: err.reason ?? fallbackCode };
}

/** OpenAI's error body, `{"error":{…}}`, as JSON text. */
export function openAiErrorBody(err: SpillwayError): string {
  return JSON.stringify({ error: openAiErrorObject(err) });
}
