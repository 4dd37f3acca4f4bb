import type { HttpRoute } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { collectText } from "../collect.js";
import { openAiShape } from "../openai/shape.js";
import { chatCompletionText, completionJson } from "./json.js";
import { parseChatCompletion, parseCompletion } from "./request.js";
import { ChatSseEncoder, CompletionSseEncoder } from "./stream.js";
import { resumableMode, resumeChat, storeChat } from "./resumable.js";
import { tracePhase, TracePhase } from "../../../../observability/phase-trace.js";

/** `POST /v1/chat/completions`: streamed (SSE) or whole. */
export const chatCompletionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/chat/completions",
  shape: openAiShape,
  body: "json",
  example: () => ({ model: "local/echo", contentType: "application/json", body: JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "hi" }] }) }),
  // A resume (`Last-Event-ID`) follows the log and opens no stream: it holds its own slot while it follows.
  follows: { when: (ex) => Boolean(ex.headers["last-event-id"]) },
  async handle(ex, call, body, ctx) {
    const mode = resumableMode(ex);
    if (mode === "resume") return resumeChat(ex, ctx);
    const parsed = parseChatCompletion(body);
    tracePhase(TracePhase.Validated);
    if (mode === "store") return storeChat(ex, call, ctx, parsed);
    const stream = await call.generate(parsed.request, parsed.fallbacks);
    if (parsed.stream) {
      ex.start(200, "text/event-stream", SSE_HEADERS);
      await pipeStream(ex, stream, new ChatSseEncoder(stream, parsed.includeUsage));
      return;
    }
    ex.json(200, chatCompletionText(stream, await collectText(stream)));
  },
};

/** `POST /v1/completions` (legacy): streamed (SSE) or whole. */
export const completionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/completions",
  shape: openAiShape,
  body: "json",
  example: () => ({ model: "local/echo", contentType: "application/json", body: JSON.stringify({ model: "local/echo", prompt: "hi" }) }),
  async handle(ex, call, body) {
    const parsed = parseCompletion(body);
    const stream = await call.generate(parsed.request, parsed.fallbacks);
    if (parsed.stream) {
      ex.start(200, "text/event-stream", SSE_HEADERS);
      await pipeStream(ex, stream, new CompletionSseEncoder(stream, parsed.includeUsage));
      return;
    }
    ex.json(200, completionJson(stream, await collectText(stream)));
  },
};

/** The OpenAI chat shape's routes. */
export const openAiChatRoutes: readonly HttpRoute[] = [chatCompletionsRoute, completionsRoute];
