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

/**
 * The `chat.completion` body as text: byte for byte
 * `JSON.stringify(chatCompletionJson(stream, r))` (test/chat-json-text.test.ts
 * compares them), written straight into one string instead of building the
 * object graph and walking it — the whole answer's body is made once per
 * request on the hot path. Strings are escaped by JSON.stringify itself.
 */
export function chatCompletionText(stream: EngineStream, r: CollectedText): string {
  let message = '{"role":"assistant","content":' + (r.text ? JSON.stringify(r.text) : r.toolCalls.length > 0 ? "null" : '""') + ',"refusal":null';
  if (r.reasoning.length > 0) {
    let reasoning = "";
    for (const b of r.reasoning) reasoning += b.text;
    if (reasoning) message += ',"reasoning_content":' + JSON.stringify(reasoning);
  }
  if (r.toolCalls.length > 0) {
    message += ',"tool_calls":[';
    for (let i = 0; i < r.toolCalls.length; i++) {
      const c = r.toolCalls[i]!;
      message += (i > 0 ? "," : "") + '{"id":' + JSON.stringify(c.id) + ',"type":"function","function":{"name":' + JSON.stringify(c.name) + ',"arguments":' + JSON.stringify(c.arguments) + "}}";
    }
    message += "]";
  }
  const u = r.usage;
  return (
    '{"id":' + JSON.stringify(`chatcmpl-${stream.id}`) +
    ',"object":"chat.completion","created":' + jsonNumber(stream.created) +
    ',"model":' + JSON.stringify(stream.route.model) +
    ',"choices":[{"index":0,"message":' + message + '},"logprobs":null,"finish_reason":"' + finishReasonText(r.finishReason) + '"}]' +
    ',"usage":{"prompt_tokens":' + jsonNumber(u.inputTokens) +
    ',"completion_tokens":' + jsonNumber(u.outputTokens) +
    ',"total_tokens":' + jsonNumber(u.totalTokens) +
    ',"prompt_tokens_details":{"cached_tokens":' + jsonNumber(u.cachedInputTokens) +
    '},"completion_tokens_details":{"reasoning_tokens":' + jsonNumber(u.reasoningTokens) + "}}}"
  );
}

/** A number as JSON.stringify writes one (non-finite as `null`). */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
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
