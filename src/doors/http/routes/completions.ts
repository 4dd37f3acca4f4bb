import { collectText } from "../encoders/collect.js";
import { CompletionSseEncoder } from "../encoders/completion-sse.js";
import { finishReasonText, usageJson } from "../encoders/openai-json.js";
import { parseCompletion } from "../generate-request.js";
import type { HttpRoute } from "../route.js";
import { pipeStream, SSE_HEADERS } from "../sse.js";
import { routeHeaders } from "./provider-header.js";

/** `POST /v1/completions` (legacy): streamed (SSE) or whole. */
export const completionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/completions",
  body: "json",
  async handle(ex, { engine }, body) {
    const parsed = parseCompletion(body);
    const stream = await engine.generate(parsed.request, ex.callOptions({ fallbacks: parsed.fallbacks }));
    if (parsed.stream) {
      ex.start(200, "text/event-stream", [...SSE_HEADERS, ...routeHeaders(stream)]);
      await pipeStream(ex, stream, new CompletionSseEncoder(stream, parsed.includeUsage));
      return;
    }
    const r = await collectText(stream);
    ex.json(
      200,
      {
        id: `cmpl-${stream.id}`,
        object: "text_completion",
        created: stream.created,
        model: stream.route.model,
        choices: [{ text: r.text, index: 0, logprobs: null, finish_reason: finishReasonText(r.finishReason) }],
        usage: usageJson(r.usage),
      },
      routeHeaders(stream),
    );
  },
};
