import { STAINLESS_HEADERS } from "../sdk-headers.js";
import type { SpillwayError } from "../../../../engine/errors.js";
import { sseData } from "../../sse.js";
import { httpStatusOf } from "../../status.js";
import type { RenderedError, RequestHeaders, Shape } from "../shape.js";
import { openAiErrorBody, openAiErrorObject } from "./errors.js";

/** `Bearer <key>` → `<key>`. */
export function bearerKey(authorization: string): string {
  return authorization.replace(/^bearer\s+/i, "").trim();
}

/** The headers an error response carries whatever the shape: Retry-After when known. */
export function retryHeaders(err: SpillwayError): Array<readonly [string, string]> {
  return err.retryAfterMs === undefined ? [] : [["retry-after", String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)))]];
}

/**
 * OpenAI's API shape (chat, completions, Responses, audio, models): the key
 * in `Authorization: Bearer`, errors as `{"error":{message,type,param,code}}`
 * with the HTTP status of the engine's table, and in-band errors as a
 * `data: {"error":…}` frame.
 */
export const openAiShape: Shape = {
  name: "openai",
  // `last-event-id` + `x-spillway-resumable`: resumable chat streams (openai-chat/resumable.ts).
  headers: ["authorization", "openai-beta", "last-event-id", "x-spillway-resumable"],
  corsHeaders: ["authorization", "content-type", "x-request-id", "openai-beta", ...STAINLESS_HEADERS, "last-event-id", "x-spillway-resumable"],
  key: (h: RequestHeaders) => bearerKey(h["authorization"] ?? ""),
  renderError(err): RenderedError {
    return { status: httpStatusOf(err), contentType: "application/json", body: openAiErrorBody(err), headers: retryHeaders(err) };
  },
  streamError(err) {
    return sseData(JSON.stringify({ error: openAiErrorObject(err) }));
  },
};
