import { STAINLESS_HEADERS } from "../sdk-headers.js";
import type { SpillwayError } from "../../../../engine/errors.js";
import { sseEvent } from "../../sse.js";
import { bearerKey, errorHeaders } from "../openai/shape.js";
import type { RenderedError, RequestHeaders, Shape } from "../shape.js";
import { anthropicErrorBody, anthropicErrorObject, anthropicStatusAndType } from "./errors.js";

/** Request headers an Anthropic client sends that Anthropic upstreams must get (`GenerateRequest.upstream_headers`). */
export const ANTHROPIC_UPSTREAM_HEADERS = ["anthropic-version", "anthropic-beta"] as const;

/**
 * The headers the Anthropic SDKs send from a browser (with
 * `dangerouslyAllowBrowser`): CORS allows no wildcards in header names, so
 * the `x-stainless-*` ones are listed one by one.
 */

/** The key an Anthropic client presents: `x-api-key` (the SDKs' `apiKey`), else `Authorization: Bearer` (`authToken`, Claude Code's `ANTHROPIC_AUTH_TOKEN`). */
export function anthropicKey(h: RequestHeaders): string {
  const key = (h["x-api-key"] ?? "").trim();
  return key || bearerKey(h["authorization"] ?? "");
}

/**
 * Anthropic's Messages API shape: the key in `x-api-key` or `Authorization:
 * Bearer`; `anthropic-version` and `anthropic-beta` read for the upstream;
 * errors as `{"type":"error","error":{type,message}}` with Anthropic's
 * statuses (errors.ts), in-band as an `event: error` frame; the request id
 * also in Anthropic's `request-id` header (what the SDKs report as
 * `_request_id`). It claims unmatched URLs under `/anthropic/` or
 * `/v1/messages`, and any request with an `anthropic-version` header, so
 * their 404/405 come in its form.
 */
export const anthropicShape: Shape = {
  name: "anthropic",
  headers: ["x-api-key", "authorization", ...ANTHROPIC_UPSTREAM_HEADERS],
  corsHeaders: [
    "x-api-key",
    "authorization",
    "content-type",
    "x-request-id",
    ...ANTHROPIC_UPSTREAM_HEADERS,
    "anthropic-dangerous-direct-browser-access",
    ...STAINLESS_HEADERS,
  ],
  requestIdHeader: "request-id",
  key: anthropicKey,
  claims: (url, h) => url.startsWith("/anthropic/") || url === "/v1/messages" || url.startsWith("/v1/messages/") || (h["anthropic-version"] ?? "") !== "",
  renderError(err: SpillwayError): RenderedError {
    const status = anthropicStatusAndType(err).status;
    return { status, contentType: "application/json", body: anthropicErrorBody(err), headers: errorHeaders(err, status) };
  },
  streamError(err) {
    return sseEvent("error", JSON.stringify({ type: "error", error: anthropicErrorObject(err) }));
  },
};
