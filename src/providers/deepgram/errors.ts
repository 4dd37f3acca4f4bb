/**
 * Deepgram's errors → SpillwayErrors, in one table. Deepgram answers a
 * refused request (REST, or the WebSocket handshake) with a status and
 * `{"err_code": "…", "err_msg": "…", "request_id": "…"}`; a live stream that
 * fails later is closed with a close code and a reason such as
 * `DATA-0000` / `NET-0001` (see upstream-socket.ts `socketClosedError`).
 */
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { codeForUpstreamStatus, parseRetryAfter } from "../shared/upstream-errors.js";
import { isObj, str } from "../shared/json.js";

/** The request field a Deepgram 400 message is about, when it names one. */
function paramOf(message: string): string | undefined {
  if (/model|tier/i.test(message)) return "model";
  if (/language/i.test(message)) return "language";
  if (/encoding|sample.?rate|audio|decode|media/i.test(message)) return "file";
  return undefined;
}

/**
 * Maps a refused Deepgram request: 400 → InvalidArgument (naming `model`,
 * `language` or `file` when the message does), 401/403 → the same status
 * (the gateway's upstream key is wrong), 402 → out of credit, 429 →
 * retryable with Retry-After, 5xx → 502 retryable.
 */
export function deepgramError(provider: string, status: number, body: string, retryAfter: string | undefined): SpillwayError {
  let message = body.trim().slice(0, 500) || `HTTP ${status}`;
  let reason: string | undefined;
  try {
    const j: unknown = JSON.parse(body);
    if (isObj(j)) {
      if (typeof j["err_msg"] === "string") message = j["err_msg"];
      else if (typeof j["message"] === "string") message = j["message"];
      if (typeof j["err_code"] === "string") reason = j["err_code"].toLowerCase();
    }
  } catch {
    // Not JSON: the raw text is the message.
  }
  const is5xx = status >= 500;
  const code = status === 402 ? Code.ResourceExhausted : codeForUpstreamStatus(status);
  return new SpillwayError(code, `${provider}: ${message}`, {
    httpStatus: is5xx ? 502 : status,
    param: status === 400 ? paramOf(message) : undefined,
    reason: is5xx ? "upstream_error" : (reason ?? (status === 401 ? "invalid_api_key" : undefined)),
    retryable: is5xx || status === 429 || status === 408,
    retryAfterMs: parseRetryAfter(retryAfter ?? null),
    fromUpstream: true,
  });
}

/** An upstream message that is not what Deepgram's API promises. */
export function deepgramMalformed(provider: string, what: string): SpillwayError {
  return new SpillwayError(Code.DataLoss, `${provider}: upstream sent ${what}`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
}

/** A live stream's `{"type":"Error","description"|"message","variant"}` message: the stream is broken (502, the variant as reason). */
export function deepgramSocketError(provider: string, j: Record<string, unknown>): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: ${str(j["description"]) || str(j["message"]) || "upstream error"}`, {
    httpStatus: 502,
    reason: str(j["variant"]) || "upstream_error",
    fromUpstream: true,
  });
}
