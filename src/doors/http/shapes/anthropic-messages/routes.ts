import type { HttpExchange } from "../../exchange.js";
import type { HttpRoute, RouteExample } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { collectText } from "../collect.js";
import { estimateInputTokens } from "./count-tokens.js";
import { anthropicGetModelRoute, anthropicListModelsRoute } from "./models.js";
import { messageJson } from "./json.js";
import { parseCountTokens, parseMessages } from "./request.js";
import { anthropicShape } from "./shape.js";
import { AnthropicSseEncoder, PING, PING_EVENT } from "./stream.js";

/** Writes a `ping` whenever a keep-alive interval passed with no event sent, until the stream is done. */
function keepAlive(ex: HttpExchange, encoder: AnthropicSseEncoder): NodeJS.Timeout {
  let seen = encoder.sent;
  const timer = setInterval(() => {
    if (encoder.done || ex.finished || ex.aborted) return;
    if (encoder.sent === seen) void ex.write(PING_EVENT);
    seen = encoder.sent;
  }, PING.intervalMs);
  timer.unref();
  return timer;
}

const example = (model = "local/echo"): RouteExample => ({
  model,
  contentType: "application/json",
  body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
});

function messagesRoute(pattern: string): HttpRoute {
  return {
    method: "post",
    pattern,
    shape: anthropicShape,
    body: "json",
    example: () => example(),
    async handle(ex, call, body) {
      const parsed = parseMessages(body, ex.headers);
      const stream = await call.generate(parsed.request, parsed.fallbacks);
      if (!parsed.stream) {
        ex.json(200, messageJson(stream, await collectText(stream)));
        return;
      }
      ex.start(200, "text/event-stream", SSE_HEADERS);
      const encoder = new AnthropicSseEncoder(stream, estimateInputTokens(parsed.request));
      void ex.write(encoder.start());
      const timer = keepAlive(ex, encoder);
      try {
        await pipeStream(ex, stream, encoder);
      } finally {
        clearInterval(timer);
      }
    },
  };
}

/**
 * `count_tokens`: the gateway's estimate ({@link estimateInputTokens}) for
 * every provider, Anthropic's included (no upstream is asked). The model
 * must exist (404) and be one the key may use (403), and the call counts
 * against the key's request rate like any other (429). It asks no upstream,
 * but it reads and walks a body as large as a message's: past capacity it is
 * refused before the body is read, like every route with an example, and
 * holds that one slot (not a second one) while it is counted.
 */
function countTokensRoute(pattern: string): HttpRoute {
  return {
    method: "post",
    pattern,
    shape: anthropicShape,
    body: "json",
    example: () => example(),
    async handle(ex, call, body, ctx) {
      const req = parseCountTokens(body, ex.headers);
      // The key's checks take over the slot the request was let in with: one slot, held while it is counted.
      const lease = await call.admit([req.model]);
      lease.release(0);
      const route = ctx.engine.router.resolve(req.model);
      // What would serve it, as the engine routes' x-spillway-* headers say.
      ex.addHeaders([
        ["x-spillway-provider", route.provider.name],
        ["x-spillway-model", route.id],
      ]);
      ex.json(200, { input_tokens: estimateInputTokens(req) });
    },
  };
}

/**
 * Anthropic's Messages API: `/v1/messages` and `/v1/messages/count_tokens`,
 * also under `/anthropic`, and the model list in Anthropic's form under
 * `/anthropic/v1/models` (`/v1/models` is OpenAI's).
 */
export const anthropicMessagesRoutes: readonly HttpRoute[] = [
  messagesRoute("/v1/messages"),
  messagesRoute("/anthropic/v1/messages"),
  countTokensRoute("/v1/messages/count_tokens"),
  countTokensRoute("/anthropic/v1/messages/count_tokens"),
  anthropicListModelsRoute,
  anthropicGetModelRoute,
];
