/**
 * The non-streamed chat body written as text (`chatCompletionText`) is byte
 * for byte `JSON.stringify(chatCompletionJson(...))` for every form the
 * answer takes: text, empty, tool calls, reasoning, escapes and odd numbers.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import type { EngineStream } from "../src/engine/active-stream.js";
import { emptyUsage } from "../src/engine/payload.js";
import type { CollectedText } from "../src/doors/http/shapes/collect.js";
import { chatCompletionJson, chatCompletionText } from "../src/doors/http/shapes/openai-chat/json.js";

const stream = (model: string, id = "0123456789abcdef", created = 1764600000) => ({ id, created, route: { model } }) as unknown as EngineStream;
const whole = (p: Partial<CollectedText>): CollectedText => ({ text: "", reasoning: [], toolCalls: [], stopSequence: "", usage: { ...emptyUsage(), inputTokens: 5, outputTokens: 20, totalTokens: 25 }, finishReason: Finish_Reason.REASON_STOP, ...p });
const block = (text: string) => ({ text, signature: "", encrypted: "", summary: false, id: "" });

const cases: Array<[string, EngineStream, CollectedText]> = [
  ["plain text", stream("m-c20-b16-d0-f0"), whole({ text: "xxxxxxxxxxxxxxxx".repeat(20) })],
  ["empty text", stream("m"), whole({ text: "" })],
  ["tool calls, no text", stream("gpt"), whole({ toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }, { id: "", name: "", arguments: "" }], finishReason: Finish_Reason.REASON_TOOL_CALLS })],
  ["tool calls and text", stream("gpt"), whole({ text: "let me look", toolCalls: [{ id: "c", name: "f", arguments: "{}" }] })],
  ["reasoning blocks", stream("r1"), whole({ text: "42", reasoning: [block("think "), block("more")] })],
  ["empty reasoning", stream("r1"), whole({ text: "42", reasoning: [block("")] })],
  ["escapes and unicode", stream('model "x" \\ y\n'), whole({ text: 'quote " backslash \\ newline \n tab \t nul \u0000 é 日本 🚀 lone \ud800 \u2028', toolCalls: [{ id: 'i"d', name: "n\\", arguments: '{"a":"\\n"}' }] })],
  ["every finish reason", stream("m"), whole({ text: "t", finishReason: Finish_Reason.REASON_LENGTH })],
  ["content filter", stream("m"), whole({ text: "t", finishReason: Finish_Reason.REASON_CONTENT_FILTER })],
  ["usage details and odd numbers", stream("m", "id", Number.NaN), whole({ text: "t", usage: { ...emptyUsage(), inputTokens: 1e21, outputTokens: -0, totalTokens: Infinity, cachedInputTokens: 3, reasoningTokens: 7 } })],
];

describe("chat.completion as text", () => {
  for (const [name, s, r] of cases) {
    it(`is JSON.stringify(chatCompletionJson): ${name}`, () => {
      const text = chatCompletionText(s, r);
      assert.equal(text, JSON.stringify(chatCompletionJson(s, r)));
      JSON.parse(text);
    });
  }
});
