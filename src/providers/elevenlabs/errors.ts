/**
 * ElevenLabs' errors → SpillwayErrors, in one table. Refusals carry
 * `{"detail": {"status": "invalid_api_key", "message": "…"}}`, or for a body
 * that fails validation (422) FastAPI's `{"detail": [{"loc": ["body",
 * "text"], "msg": "…"}]}`; the input-streaming socket sends
 * `{"message": "…", "error": "…"}` and closes with 1008 or 1011.
 */
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { codeForUpstreamStatus, parseRetryAfter } from "../shared/upstream-errors.js";
import { isObj, str, type Obj } from "../shared/json.js";

/** ElevenLabs body fields → the OpenAI speech request's names. */
const PARAMS: Readonly<Record<string, string>> = {
  text: "input",
  voice_id: "voice",
  model_id: "model",
  speed: "speed",
  output_format: "response_format",
};

function paramOf(loc: unknown): string | undefined {
  if (!Array.isArray(loc)) return undefined;
  for (let i = loc.length - 1; i >= 0; i--) {
    const p = PARAMS[String(loc[i])];
    if (p) return p;
  }
  return loc.length > 1 ? loc.slice(1).join(".") : undefined;
}

/**
 * Maps a refused ElevenLabs request: 401 (bad key, quota) keeps its status;
 * 422 is InvalidArgument naming the field (`input`, `voice`, `model`,
 * `speed`) with ElevenLabs' own message; a voice that does not exist is a
 * 400 naming `voice`; 429 is retryable with Retry-After; 5xx is 502,
 * retryable.
 */
export function elevenLabsError(provider: string, status: number, body: string, retryAfter: string | undefined): SpillwayError {
  let message = body.trim().slice(0, 500) || `HTTP ${status}`;
  let reason: string | undefined;
  let param: string | undefined;
  try {
    const j: unknown = JSON.parse(body);
    const detail = isObj(j) ? j["detail"] : undefined;
    if (Array.isArray(detail) && isObj(detail[0])) {
      const d = detail[0];
      param = paramOf(d["loc"]);
      message = `${param ? `'${param}': ` : ""}${str(d["msg"]) || "invalid request"}`;
      reason = "invalid_value";
    } else if (isObj(detail)) {
      message = str(detail["message"]) || message;
      reason = str(detail["status"]) || undefined;
    } else if (typeof detail === "string") {
      message = detail;
    }
  } catch {
    // Not JSON: the raw text is the message.
  }
  const voiceMissing = reason === "voice_not_found" || (status === 404 && /voice/i.test(message));
  const is5xx = status >= 500;
  return new SpillwayError(voiceMissing ? Code.InvalidArgument : codeForUpstreamStatus(status), `${provider}: ${message}`, {
    httpStatus: is5xx ? 502 : voiceMissing ? 400 : status,
    param: voiceMissing ? "voice" : param,
    reason: is5xx ? "upstream_error" : reason,
    retryable: is5xx || status === 429 || status === 408,
    retryAfterMs: parseRetryAfter(retryAfter ?? null),
    fromUpstream: true,
  });
}

/** The error an input-streaming socket reported in a message. */
export function elevenLabsSocketError(provider: string, m: Obj): SpillwayError {
  const err = m["error"];
  const reason = typeof err === "string" ? err : isObj(err) ? str(err["status"]) || str(err["code"]) : "";
  const message = str(m["message"]) || (isObj(err) ? str(err["message"]) : "") || reason || "upstream error";
  const auth = /api.?key|unauthori[sz]ed|auth/i.test(`${reason} ${message}`);
  return new SpillwayError(auth ? Code.Unauthenticated : Code.Unavailable, `${provider}: ${message}`, {
    httpStatus: auth ? 401 : 502,
    reason: reason || "upstream_error",
    fromUpstream: true,
  });
}
