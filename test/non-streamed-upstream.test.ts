/**
 * Non-streamed requests stay non-streamed upstream: a client that waits for
 * the whole answer (chat, Responses or the Anthropic shape without
 * `stream: true`) makes the gateway ask its upstream for the whole answer
 * (`stream: false`, no `stream_options`), which costs the upstream and the
 * gateway less than a stream; the upstream's usage and tool calls come back
 * unchanged. A streamed request still streams upstream.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { messageEnd, messageStart, startFakeAnthropic, textBlock, toolUseBlock, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { chatChunk, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { chunk, startFakeGemini, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const toolCallEvents = (): unknown[] => [
  chatChunk("", { role: "assistant" }),
  chatChunk(null, { tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] }),
  chatChunk(null, { tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "get_time", arguments: '{"tz":"CET"}' } }] }),
  chatChunk(null, {}, "tool_calls"),
  usageChunk(11, 7),
];
const TOOLS = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
  { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } } },
];

describe("non-streamed requests stay non-streamed upstream", () => {
  let openai: FakeUpstream;
  let anthropic: FakeAnthropic;
  let gemini: FakeGemini;
  let gw: TestGateway;
  before(async () => {
    openai = await startFakeOpenAi(() => ({ events: toolCallEvents() }));
    anthropic = await startFakeAnthropic();
    gemini = await startFakeGemini(() => ({ chunks: [chunk([{ functionCall: { name: "get_weather", args: { city: "Oslo" } } }], "STOP", usage(8, 3))] }));
    gw = await startTestGateway({
      providers: {
        openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-up" },
        anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "sk-ant" },
        gemini: { type: "gemini", baseUrl: gemini.baseUrl, apiKey: "g-key" },
      },
    });
  });
  after(async () => {
    await gw.close();
    await openai.close();
    await anthropic.close();
    await gemini.close();
  });

  it("Gemini: a non-streamed chat takes the whole answer from :generateContent; the call and usage come back", async () => {
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    const r = await client.chat.completions.create({ model: "gemini/gemini-fake-1", messages: [{ role: "user", content: "weather" }], tools: TOOLS });
    assert.match(gemini.requests.at(-1)!.url, /:generateContent$/);
    const call = r.choices[0]!.message.tool_calls?.[0];
    assert.deepEqual(call?.type === "function" ? [call.function.name, JSON.parse(call.function.arguments)] : [], ["get_weather", { city: "Oslo" }]);
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assert.deepEqual([r.usage?.prompt_tokens, r.usage?.completion_tokens], [8, 3]);
  });

  it("chat: stream false upstream; the tool calls and usage come back unchanged", async () => {
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    const r = await client.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "weather and time" }], tools: TOOLS });
    const up = openai.requests.at(-1)!.body as Record<string, unknown>;
    assert.equal(up["stream"], false);
    assert.equal(up["stream_options"], undefined);
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assert.deepEqual(
      r.choices[0]!.message.tool_calls?.map((c) => (c.type === "function" ? [c.id, c.function.name, c.function.arguments] : [])),
      [
        ["call_a", "get_weather", '{"city":"Oslo"}'],
        ["call_b", "get_time", '{"tz":"CET"}'],
      ],
    );
    assert.deepEqual([r.usage?.prompt_tokens, r.usage?.completion_tokens, r.usage?.total_tokens], [11, 7, 18]);
    // A streamed request still streams upstream.
    const s = await client.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
    for await (const _ of s) void _;
    assert.equal((openai.requests.at(-1)!.body as Record<string, unknown>)["stream"], true);
  });

  it("Responses: stream false upstream; function calls and usage unchanged", async () => {
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    const r = await client.responses.create({
      model: "openai/gpt-fake",
      input: "weather and time",
      tools: TOOLS.map((t) => ({ type: "function" as const, name: t.function.name, parameters: t.function.parameters, strict: false })),
    });
    assert.equal((openai.requests.at(-1)!.body as Record<string, unknown>)["stream"], false);
    assert.deepEqual(
      r.output.flatMap((o) => (o.type === "function_call" ? [[o.call_id, o.name, o.arguments]] : [])),
      [
        ["call_a", "get_weather", '{"city":"Oslo"}'],
        ["call_b", "get_time", '{"tz":"CET"}'],
      ],
    );
    assert.deepEqual([r.usage?.input_tokens, r.usage?.output_tokens], [11, 7]);
  });

  it("Anthropic shape over an Anthropic upstream: stream false upstream; tool_use blocks and usage unchanged", async () => {
    anthropic.script = () => ({ events: [messageStart(13), ...textBlock(0, ["Let me check."]), ...toolUseBlock(1, "toolu_1", "get_weather", ['{"city":', '"Oslo"}']), ...messageEnd("tool_use", 9)] });
    const client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", maxRetries: 0 });
    const m = await client.messages.create({
      model: "anthropic/claude-fake-1",
      max_tokens: 100,
      messages: [{ role: "user", content: "weather" }],
      tools: [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
    });
    assert.equal((anthropic.requests.at(-1)!.body as Record<string, unknown>)["stream"], false);
    assert.equal(m.stop_reason, "tool_use");
    const use = m.content.find((b) => b.type === "tool_use");
    assert.deepEqual(use?.type === "tool_use" ? [use.id, use.name, use.input] : [], ["toolu_1", "get_weather", { city: "Oslo" }]);
    assert.equal(m.usage.output_tokens, 9);
  });

  it("Anthropic shape over an OpenAI upstream: stream false upstream too", async () => {
    const client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", maxRetries: 0 });
    const m = await client.messages.create({ model: "openai/gpt-fake", max_tokens: 100, messages: [{ role: "user", content: "weather" }] });
    assert.equal((openai.requests.at(-1)!.body as Record<string, unknown>)["stream"], false);
    assert.equal(m.stop_reason, "tool_use");
    assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens], [11, 7]);
  });
});
