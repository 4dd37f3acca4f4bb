/**
 * A Gemini upstream behind the Anthropic Messages shape: the official
 * @anthropic-ai/sdk talks to Spillway's /v1/messages, Spillway to the fake
 * Gemini API. Text streams in order with usage at the end, Gemini's whole
 * function calls become tool_use blocks (stop_reason tool_use), tool_results
 * go back as functionResponse parts in one user turn, thought parts become
 * thinking blocks whose signature goes back to Gemini, and upstream errors
 * keep Anthropic's error types.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { chunk, startFakeGemini, textAnswer, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertAnthropicStream, recordingFetch } from "./helpers/anthropic-events.js";

const MODEL = "gemini/gemini-fake-1";
const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

describe("Gemini behind the Anthropic Messages shape", () => {
  let fake: FakeGemini;
  let gw: TestGateway;
  let client: Anthropic;
  let rec: ReturnType<typeof recordingFetch>;
  before(async () => {
    fake = await startFakeGemini();
    gw = await startTestGateway({ routing: { maxAttempts: 1, breakerThreshold: 1000 }, providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "AIza-ant" } } });
    rec = recordingFetch();
    client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", fetch: rec.fetch, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
    fake.requests.length = 0;
  });

  it("streams text in order; usage and stop_reason at the end; system and max_tokens reach Gemini", async () => {
    fake.script = () => ({ chunks: textAnswer(["Bon", "jour", "!"], [8, 3]) });
    const msg = await client.messages.stream({ model: MODEL, max_tokens: 40, system: "Be French.", messages: [{ role: "user", content: "hi" }] }).finalMessage();
    assert.deepEqual(msg.content, [{ type: "text", text: "Bonjour!" }]);
    assert.equal(msg.stop_reason, "end_turn");
    assert.deepEqual([msg.usage.input_tokens, msg.usage.output_tokens], [8, 3]);
    assertAnthropicStream(await rec.bodies.at(-1)!);
    const body = fake.requests[0]!.body;
    assert.deepEqual(body.systemInstruction, { parts: [{ text: "Be French." }] });
    assert.equal(body.generationConfig.maxOutputTokens, 40);
  });

  it("whole function calls → tool_use blocks; tool_results (one an error) → functionResponse parts in one user turn", async () => {
    fake.script = () => ({
      chunks: [chunk([{ functionCall: { name: "get_weather", args: { city: "Paris" } } }, { functionCall: { name: "get_weather", args: { city: "Rome" } } }], "STOP", usage(20, 9))],
    });
    const first = await client.messages.stream({ model: MODEL, max_tokens: 200, tools: [weather], messages: [{ role: "user", content: "Paris and Rome?" }] }).finalMessage();
    assert.deepEqual(assertAnthropicStream(await rec.bodies.at(-1)!).blocks, ["tool_use", "tool_use"]);
    assert.equal(first.stop_reason, "tool_use");
    const uses = first.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    assert.deepEqual(uses.map((u) => [u.name, u.input]), [
      ["get_weather", { city: "Paris" }],
      ["get_weather", { city: "Rome" }],
    ]);
    fake.script = () => ({ chunks: textAnswer(["Paris is sunny."]) });
    const second = await client.messages.create({
      model: MODEL,
      max_tokens: 200,
      tools: [weather],
      messages: [
        { role: "user", content: "Paris and Rome?" },
        { role: "assistant", content: first.content.map((b) => b as Anthropic.ToolUseBlockParam) },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: uses[0]!.id, content: [{ type: "text", text: "sunny, 21C" }] },
            { type: "tool_result", tool_use_id: uses[1]!.id, content: "weather service down", is_error: true },
          ],
        },
      ],
    });
    assert.deepEqual(second.content, [{ type: "text", text: "Paris is sunny." }]);
    assert.deepEqual(fake.requests[1]!.body.contents.slice(1), [
      { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }, { functionCall: { name: "get_weather", args: { city: "Rome" } } }] },
      {
        role: "user",
        parts: [
          { functionResponse: { name: "get_weather", response: { output: "sunny, 21C" } } },
          { functionResponse: { name: "get_weather", response: { error: "weather service down" } } },
        ],
      },
    ]);
  });

  it("thought parts become a thinking block with Gemini's signature, which goes back to Gemini on the next turn", async () => {
    fake.script = () => ({
      chunks: [chunk([{ text: "Pondering", thought: true }]), chunk([{ functionCall: { name: "get_weather", args: { city: "Oslo" } }, thoughtSignature: "c2lnLW9zbG8=" }], "STOP", usage(6, 4, { thoughts: 12 }))],
    });
    const first = await client.messages
      .stream({ model: MODEL, max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 1024 }, tools: [weather], messages: [{ role: "user", content: "Oslo?" }] })
      .finalMessage();
    assert.deepEqual(first.content.map((b) => b.type), ["thinking", "tool_use"]);
    const thinking = first.content[0] as Anthropic.ThinkingBlock;
    assert.equal(thinking.thinking, "Pondering");
    assert.equal(thinking.signature, "c2lnLW9zbG8=");
    assert.deepEqual(fake.requests[0]!.body.generationConfig.thinkingConfig, { includeThoughts: true, thinkingBudget: 1024 });

    fake.script = () => ({ chunks: textAnswer(["Cold."]) });
    const use = first.content[1] as Anthropic.ToolUseBlock;
    await client.messages.create({
      model: MODEL,
      max_tokens: 2000,
      tools: [weather],
      messages: [
        { role: "user", content: "Oslo?" },
        { role: "assistant", content: [thinking, use] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "-5C" }] },
      ],
    });
    assert.deepEqual(fake.requests[1]!.body.contents[1], {
      role: "model",
      parts: [{ functionCall: { name: "get_weather", args: { city: "Oslo" } }, thoughtSignature: "c2lnLW9zbG8=" }],
    });
  });

  it("upstream errors keep Anthropic's error types, before the stream and in it", async () => {
    fake.script = () => ({ status: 429, errorMessage: "Resource has been exhausted", headers: { "retry-after": "3" } });
    await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: "user", content: "x" }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.RateLimitError, String(e));
      assert.equal(e.headers?.get("retry-after"), "3");
      return true;
    });
    fake.script = () => ({ chunks: [chunk([{ text: "par" }]), { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } }], delayMs: 20 });
    const stream = client.messages.stream({ model: MODEL, max_tokens: 10, messages: [{ role: "user", content: "x" }] });
    await assert.rejects(stream.finalMessage(), /internal error/i);
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.ok(checked.error, "an error event ends the stream");
  });
});
