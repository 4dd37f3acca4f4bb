/**
 * The Anthropic Messages API inbound, in front of real wire protocols: the
 * official @anthropic-ai/sdk talks to Spillway, Spillway to a fake OpenAI
 * upstream (chat completions SSE) and a fake Anthropic upstream (Messages
 * SSE). A multi-turn tool loop with parallel tool_use blocks and
 * tool_results, reasoning streamed as thinking blocks, everything Anthropic
 * understands passed through to an anthropic/… model (cache_control,
 * thinking signatures, redacted thinking, documents, images, anthropic-beta),
 * upstream failures before and after the first byte, keep-alive pings, and a
 * client that leaves aborting the upstream.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { chatChunk, chatEvents, reasoningChatEvents, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import {
  errorEvent,
  messageEnd,
  messageStart,
  redactedThinkingBlock,
  startFakeAnthropic,
  textBlock,
  thinkingBlock,
  toolUseBlock,
  type FakeAnthropic,
} from "./helpers/fake-anthropic.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertAnthropicError, assertAnthropicStream, recordingFetch } from "./helpers/anthropic-events.js";
import { PING } from "../src/doors/http/shapes/anthropic-messages/stream.js";

const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

/** OpenAI chat chunks calling `get_weather` twice in parallel, the argument pieces of the two calls interleaved. */
function parallelOpenAiCalls(): unknown[] {
  const delta = (index: number, fields: Record<string, unknown>): unknown => chatChunk(null, { tool_calls: [{ index, ...fields }] });
  return [
    chatChunk(null, { role: "assistant", content: null }),
    delta(0, { id: "call_a", type: "function", function: { name: "get_weather", arguments: "" } }),
    delta(1, { id: "call_b", type: "function", function: { name: "get_weather", arguments: "" } }),
    delta(0, { function: { arguments: '{"city":' } }),
    delta(1, { function: { arguments: '{"city":' } }),
    delta(0, { function: { arguments: '"Paris"}' } }),
    delta(1, { function: { arguments: '"Rome"}' } }),
    chatChunk(null, {}, "tool_calls"),
    usageChunk(20, 9),
  ];
}

describe("Anthropic Messages API in front of upstreams", () => {
  let openai: FakeUpstream;
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  let client: Anthropic;
  let rec: ReturnType<typeof recordingFetch>;
  before(async () => {
    openai = await startFakeOpenAi();
    anthropic = await startFakeAnthropic();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-upstream" },
        anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "sk-ant-upstream", maxTokens: 1000 },
      },
    });
    rec = recordingFetch();
    client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", fetch: rec.fetch, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await openai.close();
    await anthropic.close();
  });
  beforeEach(() => {
    openai.script = () => ({});
    anthropic.script = () => ({});
    openai.requests.length = 0;
    anthropic.requests.length = 0;
  });

  it("OpenAI upstream: the streaming helper gets the text, and usage from the upstream's end in message_delta", async () => {
    openai.script = () => ({ events: chatEvents(["Hello", " world"], [7, 2]) });
    const msg = await client.messages.stream({ model: "openai/gpt-fake", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    assert.deepEqual(msg.content, [{ type: "text", text: "Hello world" }]);
    assert.deepEqual([msg.usage.input_tokens, msg.usage.output_tokens], [7, 2]);
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.equal(checked.messageDelta.usage.input_tokens, 7, "input_tokens rides on message_delta too");
    const body = openai.requests[0]!.body;
    assert.equal(body.max_tokens ?? body.max_completion_tokens, 50);
    assert.deepEqual(body.messages, [{ role: "user", content: "hi" }]);
  });

  it("OpenAI upstream: a tool loop with parallel tool_use blocks and tool_results (one an error)", async () => {
    openai.script = (req) => (req.body.messages.some((m: any) => m.role === "tool") ? { events: chatEvents(["Paris is sunny."]) } : { events: parallelOpenAiCalls() });
    const first = await client.messages
      .stream({ model: "openai/gpt-fake", max_tokens: 200, tools: [weather], messages: [{ role: "user", content: "Weather in Paris and Rome?" }] })
      .finalMessage();
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.deepEqual(checked.blocks, ["tool_use", "tool_use"]);
    assert.equal(first.stop_reason, "tool_use");
    const uses = first.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    assert.deepEqual(
      uses.map((u) => [u.id, u.name, u.input]),
      [
        ["call_a", "get_weather", { city: "Paris" }],
        ["call_b", "get_weather", { city: "Rome" }],
      ],
    );
    const second = await client.messages.create({
      model: "openai/gpt-fake",
      max_tokens: 200,
      tools: [weather],
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        { role: "assistant", content: first.content.map((b) => b as Anthropic.ToolUseBlockParam) },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_a", content: [{ type: "text", text: "sunny, 21C" }] },
            { type: "tool_result", tool_use_id: "call_b", content: "weather service down", is_error: true },
          ],
        },
      ],
    });
    assert.deepEqual(second.content, [{ type: "text", text: "Paris is sunny." }]);
    assert.equal(second.stop_reason, "end_turn");
    const sent = openai.requests[1]!.body.messages;
    assert.equal(sent[1].role, "assistant");
    assert.deepEqual(
      sent[1].tool_calls.map((c: any) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
      [
        ["call_a", "get_weather", { city: "Paris" }],
        ["call_b", "get_weather", { city: "Rome" }],
      ],
    );
    assert.deepEqual(
      sent.slice(2).map((m: any) => [m.role, m.tool_call_id]),
      [
        ["tool", "call_a"],
        ["tool", "call_b"],
      ],
    );
    assert.match(JSON.stringify(sent[2].content), /sunny, 21C/);
    assert.match(JSON.stringify(sent[3].content), /weather service down/);
  });

  it("OpenAI upstream: reasoning_content streams as a thinking block before the text", async () => {
    openai.script = () => ({ events: reasoningChatEvents(["Let me", " think."], ["Answer."]) });
    const thinking: string[] = [];
    const stream = client.messages.stream({ model: "openai/gpt-fake", max_tokens: 50, messages: [{ role: "user", content: "q" }] });
    stream.on("thinking", (t) => thinking.push(t));
    const msg = await stream.finalMessage();
    assert.deepEqual(assertAnthropicStream(await rec.bodies.at(-1)!).blocks, ["thinking", "text"]);
    assert.equal(thinking.join(""), "Let me think.");
    assert.equal((msg.content[0] as Anthropic.ThinkingBlock).thinking, "Let me think.");
    assert.deepEqual(msg.content[1], { type: "text", text: "Answer." });
  });

  it("Anthropic upstream: thinking (with signature), redacted thinking, text and parallel tool_use stream as Anthropic sent them", async () => {
    anthropic.script = () => ({
      events: [
        messageStart(30),
        ...redactedThinkingBlock(0, "opaque-redacted"),
        ...thinkingBlock(1, ["Two cities", ", two calls."], "sig-abc"),
        ...textBlock(2, ["Checking both."]),
        ...toolUseBlock(3, "toolu_a", "get_weather", ['{"city":', '"Paris"}']),
        ...toolUseBlock(4, "toolu_b", "get_weather", ['{"city":"Rome"}']),
        ...messageEnd("tool_use", 40),
      ],
    });
    const msg = await client.messages
      .stream({ model: "anthropic/claude-fake-1", max_tokens: 4000, thinking: { type: "enabled", budget_tokens: 2048 }, tools: [weather], messages: [{ role: "user", content: "Paris and Rome?" }] })
      .finalMessage();
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.deepEqual(checked.blocks, ["redacted_thinking", "thinking", "text", "tool_use", "tool_use"]);
    assert.deepEqual(msg.content[0], { type: "redacted_thinking", data: "opaque-redacted" });
    assert.deepEqual(msg.content[1], { type: "thinking", thinking: "Two cities, two calls.", signature: "sig-abc" });
    assert.deepEqual(msg.content[2], { type: "text", text: "Checking both." });
    assert.deepEqual(
      msg.content.slice(3).map((b) => [(b as Anthropic.ToolUseBlock).id, (b as Anthropic.ToolUseBlock).input]),
      [
        ["toolu_a", { city: "Paris" }],
        ["toolu_b", { city: "Rome" }],
      ],
    );
    assert.equal(msg.stop_reason, "tool_use");
    assert.deepEqual([msg.usage.input_tokens, msg.usage.output_tokens], [30, 40]);
    assert.deepEqual(anthropic.requests[0]!.body.thinking, { type: "enabled", budget_tokens: 2048 });
  });

  it("Anthropic upstream: nothing Anthropic understands is lost on the way (cache_control, signatures, documents, images, tool results, beta headers)", async () => {
    anthropic.script = () => ({ events: [messageStart(5), ...textBlock(0, ["ok"]), ...messageEnd("end_turn", 1)] });
    const png = Buffer.from("fake png bytes").toString("base64");
    const pdf = Buffer.from("%PDF-1.4 fake").toString("base64");
    const userBlocks: Anthropic.ContentBlockParam[] = [
      { type: "text", text: "Look at these.", cache_control: { type: "ephemeral", ttl: "1h" } },
      { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
      { type: "document", source: { type: "base64", media_type: "application/pdf", data: pdf }, title: "Report", context: "Q3", citations: { enabled: true }, cache_control: { type: "ephemeral" } },
      { type: "document", source: { type: "text", media_type: "text/plain", data: "plain words" }, title: "Notes" },
      { type: "document", source: { type: "url", url: "https://example.com/a.pdf" } },
    ];
    const assistantBlocks: Anthropic.ContentBlockParam[] = [
      { type: "thinking", thinking: "I should call the tool.", signature: "sig-123" },
      { type: "redacted_thinking", data: "opaque-456" },
      { type: "text", text: "Calling." },
      { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Rome" } },
    ];
    const results: Anthropic.ContentBlockParam[] = [
      { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "sunny" }, { type: "image", source: { type: "base64", media_type: "image/png", data: png } }] },
      { type: "tool_result", tool_use_id: "toolu_2", content: "boom", is_error: true },
      { type: "text", text: "Go on." },
    ];
    const msg = await client.messages.create(
      {
        model: "anthropic/claude-fake-1",
        max_tokens: 4096,
        system: [{ type: "text", text: "You are a weather bot.", cache_control: { type: "ephemeral" } }],
        tools: [{ ...weather, cache_control: { type: "ephemeral" } }],
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        thinking: { type: "enabled", budget_tokens: 2048 },
        stop_sequences: ["END"],
        metadata: { user_id: "user-7" },
        messages: [
          { role: "user", content: userBlocks },
          { role: "assistant", content: assistantBlocks },
          { role: "user", content: results },
        ],
        ...({ top_k: 5, context_management: { edits: [] } } as object),
      },
      { headers: { "anthropic-beta": "files-api-2025-04-14,context-management-2025-06-27", "anthropic-version": "2023-06-01" } },
    );
    assert.deepEqual(msg.content, [{ type: "text", text: "ok" }]);
    const req = anthropic.requests[0]!;
    assert.equal(req.headers["anthropic-version"], "2023-06-01");
    assert.deepEqual(String(req.headers["anthropic-beta"]).split(",").sort(), ["context-management-2025-06-27", "files-api-2025-04-14"]);
    assert.equal(req.headers["x-api-key"], "sk-ant-upstream", "the upstream gets its own key, never the client's");
    const b = req.body;
    assert.deepEqual(b.system, [{ type: "text", text: "You are a weather bot.", cache_control: { type: "ephemeral" } }]);
    assert.deepEqual(b.tools, [{ ...weather, cache_control: { type: "ephemeral" } }]);
    assert.deepEqual(b.tool_choice, { type: "any", disable_parallel_tool_use: true });
    assert.deepEqual(b.thinking, { type: "enabled", budget_tokens: 2048 });
    assert.deepEqual(b.stop_sequences, ["END"]);
    assert.deepEqual(b.metadata, { user_id: "user-7" });
    assert.equal(b.top_k, 5);
    assert.equal(b.max_tokens, 4096);
    assert.deepEqual(b.context_management, { edits: [] }, "unknown Anthropic fields pass through");
    assert.deepEqual(b.messages[0], { role: "user", content: userBlocks });
    assert.deepEqual(b.messages[1], { role: "assistant", content: assistantBlocks });
    assert.deepEqual(b.messages[2].role, "user");
    assert.deepEqual(b.messages[2].content, [
      { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "sunny" }, { type: "image", source: { type: "base64", media_type: "image/png", data: png } }] },
      { type: "tool_result", tool_use_id: "toolu_2", content: "boom", is_error: true },
      { type: "text", text: "Go on." },
    ]);
  });

  it("the SDK's beta namespace (?beta=true, betas → anthropic-beta) and newer thinking kinds reach an Anthropic upstream", async () => {
    anthropic.script = () => ({ events: [messageStart(5), ...textBlock(0, ["beta ok"]), ...messageEnd("end_turn", 2)] });
    const msg = await client.beta.messages
      .stream({
        model: "anthropic/claude-fake-1",
        max_tokens: 100,
        betas: ["interleaved-thinking-2025-05-14"],
        thinking: { type: "adaptive" },
        messages: [{ role: "user", content: "x" }],
      })
      .finalMessage();
    assert.deepEqual(msg.content, [{ type: "text", text: "beta ok" }]);
    assertAnthropicStream(await rec.bodies.at(-1)!);
    const req = anthropic.requests[0]!;
    assert.match(String(req.headers["anthropic-beta"]), /interleaved-thinking-2025-05-14/);
    assert.deepEqual(req.body.thinking, { type: "adaptive" }, "a thinking kind Spillway does not type passes through");
    const counted = await client.beta.messages.countTokens({ model: "anthropic/claude-fake-1", betas: ["token-counting-2024-11-01"], messages: [{ role: "user", content: "hi" }] });
    assert.equal(counted.input_tokens, 5);
    assert.equal(anthropic.requests.length, 1, "count_tokens asks no upstream");
  });

  it("Anthropic upstream: stop_sequence comes back with the sequence, streamed and not", async () => {
    anthropic.script = () => ({ events: [messageStart(5), ...textBlock(0, ["abc "]), ...messageEnd("stop_sequence", 2, "END")] });
    const streamed = await client.messages.stream({ model: "anthropic/claude-fake-1", max_tokens: 50, stop_sequences: ["END"], messages: [{ role: "user", content: "x" }] }).finalMessage();
    assert.equal(streamed.stop_reason, "stop_sequence");
    assert.equal(streamed.stop_sequence, "END");
    assertAnthropicStream(await rec.bodies.at(-1)!);
    const whole = await client.messages.create({ model: "anthropic/claude-fake-1", max_tokens: 50, stop_sequences: ["END"], messages: [{ role: "user", content: "x" }] });
    assert.deepEqual([whole.stop_reason, whole.stop_sequence], ["stop_sequence", "END"]);
  });

  it("an upstream failing before the first byte: its status in Anthropic's form (429, 529 overloaded, 5xx → 502)", async () => {
    anthropic.script = () => ({ status: 429, errorType: "rate_limit_error", errorMessage: "slow down" });
    await assert.rejects(client.messages.create({ model: "anthropic/claude-fake-1", max_tokens: 5, messages: [{ role: "user", content: "x" }] }), (e: any) => {
      assert.ok(e instanceof Anthropic.RateLimitError, String(e));
      assertAnthropicError(e.error, "rate_limit_error");
      assert.match((e.error as any).error.message, /slow down/);
      return true;
    });
    anthropic.script = () => ({ status: 529, errorType: "overloaded_error", errorMessage: "Overloaded" });
    await assert.rejects(client.messages.stream({ model: "anthropic/claude-fake-1", max_tokens: 5, messages: [{ role: "user", content: "x" }] }).finalMessage(), (e: any) => {
      assert.equal(e.status, 529, String(e));
      assertAnthropicError(e.error, "overloaded_error");
      return true;
    });
    openai.script = () => ({ status: 500 });
    const res = await fetch(`${gw.origin}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "openai/gpt-fake", max_tokens: 5, stream: true, messages: [{ role: "user", content: "x" }] }),
    });
    assert.equal(res.status, 502);
    assertAnthropicError(await res.json(), "api_error");
  });

  it("an upstream failing after the first byte: an `event: error` ends the stream; the SDK throws with the type", async () => {
    anthropic.script = () => ({
      events: [messageStart(5), { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "partial" } }, errorEvent("overloaded_error", "Overloaded")],
    });
    const texts: string[] = [];
    const stream = client.messages.stream({ model: "anthropic/claude-fake-1", max_tokens: 50, messages: [{ role: "user", content: "x" }] });
    stream.on("text", (t) => texts.push(t));
    await assert.rejects(stream.finalMessage(), (e: any) => {
      assert.ok(e instanceof Anthropic.APIError, String(e));
      assert.equal((e.error)?.error?.type, "overloaded_error");
      return true;
    });
    assert.equal(texts.join(""), "partial");
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.equal(checked.error.error.type, "overloaded_error");
    // An OpenAI upstream that dies mid-stream (after "a", once the client has read it): the same, as an api_error.
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    openai.script = () => ({ events: chatEvents(["a", "b", "c"]), gate: { index: 2, until }, destroyAfter: 3 });
    const res = await fetch(`${gw.origin}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "openai/gpt-fake", max_tokens: 5, stream: true, messages: [{ role: "user", content: "x" }] }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (text.includes('"text":"a"')) release();
    }
    assert.equal(res.status, 200);
    const dead = assertAnthropicStream(text);
    assert.equal(dead.error.error.type, "api_error");
    assert.equal(dead.messageDelta, undefined);
  });

  it("a client that leaves mid-stream aborts the upstream request", async () => {
    openai.script = () => ({ events: chatEvents(["Hello", " world", "!"]), stallAfter: 2 });
    const aborted = openai.nextAbort();
    const stream = client.messages.stream({ model: "openai/gpt-fake", max_tokens: 50, messages: [{ role: "user", content: "x" }] });
    const ended = stream.done().catch((e: unknown) => e);
    await new Promise<void>((resolve) => stream.on("text", () => resolve()));
    stream.abort();
    assert.ok((await ended) instanceof Anthropic.APIUserAbortError);
    const req = await aborted;
    assert.ok(req.abortedAt !== undefined, "the fake saw the gateway close the upstream request");
  });

  it("sends ping keep-alives while the upstream is silent", async () => {
    const saved = PING.intervalMs;
    PING.intervalMs = 20;
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    try {
      openai.script = () => ({ events: chatEvents(["before", " after"]), gate: { index: 2, until } });
      const res = await fetch(`${gw.origin}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "openai/gpt-fake", max_tokens: 5, stream: true, messages: [{ role: "user", content: "x" }] }),
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      let released = false;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        // The first ping follows message_start; a second one can only come from the idle timer.
        if (!released && text.includes("before") && text.split("event: ping").length - 1 >= 2) {
          released = true;
          release();
        }
      }
      assert.ok(released, "pings came while the upstream waited");
      const checked = assertAnthropicStream(text);
      const pings = checked.frames.map((f, i) => (f.event === "ping" ? i : -1)).filter((i) => i > 1);
      assert.ok(pings.length >= 1, "a keep-alive ping after content");
      assert.equal(checked.messageDelta.delta.stop_reason, "end_turn");
    } finally {
      PING.intervalMs = saved;
      release();
    }
  });
});
