import { ChatSseEncoder } from "../encoders/chat-sse.js";
import { collectText } from "../encoders/collect.js";
import { finishReasonText, usageJson } from "../encoders/openai-json.js";
import { parseChatCompletion } from "../generate-request.js";
import type { HttpRoute } from "../route.js";
import { pipeStream, SSE_HEADERS } from "../sse.js";
import { routeHeaders } from "./provider-header.js";
import { tracePhase, TracePhase } from "../../../observability/phase-trace.js";

/** `POST /v1/chat/completions`: streamed (SSE) or whole. */
export const chatCompletionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/chat/completions",
  body: "json",
  async handle(ex, { engine }, body) {
    const parsed = parseChatCompletion(body);
    tracePhase(TracePhase.Validated);
    const stream = await engine.generate(parsed.request, ex.callOptions({ fallbacks: parsed.fallbacks }));
    if (parsed.stream) {
      ex.start(200, "text/event-stream", [...SSE_HEADERS, ...routeHeaders(stream)]);
      await pipeStream(ex, stream, new ChatSseEncoder(stream, parsed.includeUsage));
      return;
    }
    const r = await collectText(stream);
    const message: Record<string, unknown> = { role: "assistant", content: r.text || null, refusal: null };
    if (r.toolCalls.length > 0) {
      message["tool_calls"] = r.toolCalls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      }));
    } else message["content"] = r.text;
    ex.json(
      200,
      {
        id: `chatcmpl-${stream.id}`,
        object: "chat.completion",
        created: stream.created,
        model: stream.route.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonText(r.finishReason) }],
        usage: usageJson(r.usage),
      },
      routeHeaders(stream),
    );
  },
};
