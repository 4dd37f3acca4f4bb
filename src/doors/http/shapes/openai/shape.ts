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

/** Client-error statuses a client may still try again (OpenAI's and Anthropic's SDKs retry these). */
const RETRYABLE_4XX: ReadonlySet<number> = new Set([408, 409, 429]);

/**
 * The headers an error response carries whatever the shape: `Retry-After`
 * when known, and `x-should-retry: false` on a client error that trying
 * again cannot fix (400, 401, 403, 404, 413, 415 …). The Stainless-built
 * SDKs (`openai`, `@anthropic-ai/sdk`) read that header before their own
 * rules; Claude Code retries a 401 ten times unless told not to.
 */
export function errorHeaders(err: SpillwayError, status: number): Array<readonly [string, string]> {
  const h: Array<readonly [string, string]> = [];
  if (err.retryAfterMs !== undefined) h.push(["retry-after", String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)))]);
  if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) h.push(["x-should-retry", "false"]);
  return h;
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
    const status = httpStatusOf(err);
    return { status, contentType: "application/json", body: openAiErrorBody(err), headers: errorHeaders(err, status) };
  },
  streamError(err) {
    return sseData(JSON.stringify({ error: openAiErrorObject(err) }));
  },
};
