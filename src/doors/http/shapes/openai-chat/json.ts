import type { EngineStream } from "../../../../engine/active-stream.js";
import type { CollectedText } from "../collect.js";
import { finishReasonText, usageJson } from "../openai/wire.js";

/** OpenAI's `chat.completion` object for a whole generation (reasoning as `reasoning_content`). */
export function chatCompletionJson(stream: EngineStream, r: CollectedText): Record<string, unknown> {
  const message: Record<string, unknown> = { role: "assistant", content: r.text || null, refusal: null };
  const reasoning = r.reasoning.map((b) => b.text).join("");
  if (reasoning) message["reasoning_content"] = reasoning;
  if (r.toolCalls.length > 0) {
    message["tool_calls"] = r.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
  } else message["content"] = r.text;
  return {
    id: `chatcmpl-${stream.id}`,
    object: "chat.completion",
    created: stream.created,
    model: stream.route.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonText(r.finishReason) }],
    usage: usageJson(r.usage),
  };
}

/** OpenAI's legacy `text_completion` object for a whole generation. */
export function completionJson(stream: EngineStream, r: CollectedText): Record<string, unknown> {
  return {
    id: `cmpl-${stream.id}`,
    object: "text_completion",
    created: stream.created,
    model: stream.route.model,
    choices: [{ text: r.text, index: 0, logprobs: null, finish_reason: finishReasonText(r.finishReason) }],
    usage: usageJson(r.usage),
  };
}
