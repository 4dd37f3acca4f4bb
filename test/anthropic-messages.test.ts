/**
 * The Anthropic Messages API inbound, driven with the official
 * @anthropic-ai/sdk against `local/echo`: the streaming helper and
 * finalMessage(), non-streamed create, thinking blocks (with signature)
 * passed back, count_tokens, aliases for the bare names Claude Code sends,
 * gateway keys in `x-api-key` and `Authorization: Bearer`. Every stream the
 * SDK got is checked against Anthropic's event shapes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertAnthropicError, assertAnthropicStream, recordingFetch } from "./helpers/anthropic-events.js";

describe("Anthropic Messages API on local/echo", () => {
  let gw: TestGateway;
  let client: Anthropic;
  let rec: ReturnType<typeof recordingFetch>;
  before(async () => {
    gw = await startTestGateway({ aliases: { "claude-sonnet-4-5": "local/echo", "claude-haiku-4-5-20251001": "local/echo" } });
    rec = recordingFetch();
    client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", fetch: rec.fetch, maxRetries: 0 });
  });
  after(() => gw.close());

  it("streams with the SDK's helper: finalMessage() has the text, stop reason and usage; every event is Anthropic's", async () => {
    const stream = client.messages.stream({ model: "local/echo", max_tokens: 100, messages: [{ role: "user", content: "Hello from the SDK" }] });
    const texts: string[] = [];
    stream.on("text", (t) => texts.push(t));
    const msg = await stream.finalMessage();
    assert.deepEqual(msg.content, [{ type: "text", text: "Hello from the SDK" }]);
    assert.equal(texts.join(""), "Hello from the SDK");
    assert.equal(msg.stop_reason, "end_turn");
    assert.equal(msg.stop_sequence, null);
    assert.equal(msg.role, "assistant");
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.usage.output_tokens, 4);
    // local/echo counts 4 prompt tokens (the words and one per message); message_delta carries the real count.
    assert.equal(msg.usage.input_tokens, 5);
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.deepEqual(checked.blocks, ["text"]);
    assert.equal(checked.frames[1]!.event, "ping", "a ping right after message_start");
    assert.equal(checked.messageDelta.usage.input_tokens, 5);
  });

  it("answers non-streamed with a Message; max_tokens stops with stop_reason max_tokens; request-id header", async () => {
    const { data, response } = await client.messages
      .create({ model: "local/echo", max_tokens: 2, messages: [{ role: "user", content: "one two three four" }] })
      .withResponse();
    assert.equal(data.type, "message");
    assert.deepEqual(data.content, [{ type: "text", text: "one two" }]);
    assert.equal(data.stop_reason, "max_tokens");
    assert.equal(data.usage.output_tokens, 2);
    assert.ok(response.headers.get("request-id"));
    assert.equal(response.headers.get("request-id"), response.headers.get("x-request-id"));
    assert.equal(response.headers.get("x-spillway-provider"), "local");
  });

  it("system as blocks, stop_sequences, temperature, top_k, metadata are accepted; content as blocks", async () => {
    const msg = await client.messages.create({
      model: "local/echo",
      max_tokens: 50,
      system: [{ type: "text", text: "Be terse.", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "alpha beta STOP gamma", cache_control: { type: "ephemeral", ttl: "5m" } }] }],
      stop_sequences: ["STOP"],
      // This SDK version's types leave out temperature, top_p and top_k; the API takes them.
      ...({ temperature: 0.5, top_p: 0.9, top_k: 10 } as object),
      metadata: { user_id: "u-1" },
    });
    assert.deepEqual(msg.content, [{ type: "text", text: "alpha beta" }]);
    assert.deepEqual([msg.stop_reason, msg.stop_sequence], ["stop_sequence", "STOP"], "echo says which stop sequence cut it");
  });

  it("thinking: echo reasons when asked, the block carries a signature, and it can be passed back", async () => {
    const stream = client.messages.stream({
      model: "local/echo",
      max_tokens: 2000,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: "think then echo" }],
    });
    const thinking: string[] = [];
    stream.on("thinking", (t) => thinking.push(t));
    const msg = await stream.finalMessage();
    const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
    assert.deepEqual(checked.blocks, ["thinking", "text"]);
    assert.equal(msg.content[0]!.type, "thinking");
    const block = msg.content[0] as Anthropic.ThinkingBlock;
    assert.ok(block.thinking.length > 10);
    assert.equal(block.thinking, thinking.join(""));
    assert.ok(block.signature.length > 10, "signature_delta reached the SDK");
    assert.deepEqual(msg.content[1], { type: "text", text: "think then echo" });
    assert.ok(msg.usage.output_tokens > 3, "reasoning tokens count as output");
    // The next turn carries the thinking block back with its signature.
    const next = await client.messages.create({
      model: "local/echo",
      max_tokens: 2000,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [
        { role: "user", content: "think then echo" },
        { role: "assistant", content: msg.content.map((b) => (b.type === "text" ? { type: "text" as const, text: b.text } : (b as Anthropic.ThinkingBlock))) },
        { role: "user", content: "and again" },
      ],
    });
    assert.equal(next.content[0]!.type, "thinking");
    assert.deepEqual(next.content.at(-1), { type: "text", text: "and again" });
  });

  it("tool_result turns are accepted: the conversation continues (echo repeats the last user text)", async () => {
    const msg = await client.messages.create({
      model: "local/echo",
      max_tokens: 50,
      tools: [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }, { type: "text", text: "thanks" }] },
      ],
    });
    assert.deepEqual(msg.content, [{ type: "text", text: "thanks" }]);
  });

  it("bare model names route through config aliases (Claude Code sends claude-sonnet-4-5 and dated ids)", async () => {
    for (const model of ["claude-sonnet-4-5", "claude-haiku-4-5-20251001"]) {
      const msg = await client.messages.create({ model, max_tokens: 10, messages: [{ role: "user", content: "aliased" }] });
      assert.deepEqual(msg.content, [{ type: "text", text: "aliased" }], model);
    }
    await assert.rejects(client.messages.create({ model: "claude-opus-unknown", max_tokens: 10, messages: [{ role: "user", content: "x" }] }), (e: any) => {
      assert.ok(e instanceof Anthropic.NotFoundError);
      assertAnthropicError(e.error, "not_found_error");
      return true;
    });
  });

  it("count_tokens: the gateway's estimate, growing with the prompt; unknown models are 404s", async () => {
    const small = await client.messages.countTokens({ model: "local/echo", messages: [{ role: "user", content: "hi" }] });
    const big = await client.messages.countTokens({
      model: "claude-sonnet-4-5",
      system: "You are a helpful assistant with a long system prompt.",
      tools: [{ name: "t", input_schema: { type: "object", properties: { a: { type: "string" } } } }],
      messages: [{ role: "user", content: "x".repeat(400) }],
    });
    assert.equal(small.input_tokens, 5, "4 per message plus 1 per 4 characters");
    assert.ok(big.input_tokens > 100 + small.input_tokens, JSON.stringify(big));
    await assert.rejects(client.messages.countTokens({ model: "nosuch/model", messages: [{ role: "user", content: "hi" }] }), Anthropic.NotFoundError);
    const res = await fetch(`${gw.origin}/anthropic/v1/messages/count_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.deepEqual(await res.json(), { input_tokens: 5 });
  });

  it("serves the same routes under /anthropic (baseURL …/anthropic)", async () => {
    const c = new Anthropic({ baseURL: `${gw.origin}/anthropic`, apiKey: "unused", maxRetries: 0 });
    const msg = await c.messages.stream({ model: "local/echo", max_tokens: 10, messages: [{ role: "user", content: "prefixed" }] }).finalMessage();
    assert.deepEqual(msg.content, [{ type: "text", text: "prefixed" }]);
  });

  it("lists models in Anthropic's form under /anthropic/v1/models: aliases, then text models", async () => {
    const c = new Anthropic({ baseURL: `${gw.origin}/anthropic`, apiKey: "unused", maxRetries: 0 });
    const ids: string[] = [];
    for await (const m of c.models.list()) ids.push(m.id);
    assert.deepEqual(ids.slice(0, 2), ["claude-sonnet-4-5", "claude-haiku-4-5-20251001"]);
    assert.ok(ids.includes("local/echo"));
    assert.ok(!ids.includes("local/tts"), "only text models");
    const one = await c.models.retrieve("claude-sonnet-4-5");
    assert.equal(one.type, "model");
    assert.match(one.display_name, /local\/echo/);
    await assert.rejects(c.models.retrieve("nope"), Anthropic.NotFoundError);
  });

  it("answers CORS preflight with Anthropic's browser headers allowed", async () => {
    const res = await fetch(`${gw.origin}/v1/messages`, { method: "OPTIONS" });
    assert.equal(res.status, 204);
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
    for (const h of ["x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", "x-stainless-retry-count"]) {
      assert.ok(allowed.includes(h), `${h} in ${allowed.join(",")}`);
    }
  });
});

describe("Anthropic Messages API with gateway keys", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      auth: { keys: [{ name: "team", key: "sk-gw-team" }, { name: "echo-only", key: "sk-gw-echo", models: ["local/echo"] }] },
      aliases: { "claude-sonnet-4-5": "local/echo" },
    });
  });
  after(() => gw.close());

  const ask = (c: Anthropic, model = "local/echo") => c.messages.create({ model, max_tokens: 10, messages: [{ role: "user", content: "keyed" }] });

  it("accepts the key in x-api-key (apiKey) and in Authorization: Bearer (authToken)", async () => {
    const byApiKey = await ask(new Anthropic({ baseURL: gw.origin, apiKey: "sk-gw-team", maxRetries: 0 }));
    assert.deepEqual(byApiKey.content, [{ type: "text", text: "keyed" }]);
    const byToken = await ask(new Anthropic({ baseURL: gw.origin, apiKey: null, authToken: "sk-gw-team", maxRetries: 0 }));
    assert.deepEqual(byToken.content, [{ type: "text", text: "keyed" }]);
    const streamed = await new Anthropic({ baseURL: gw.origin, apiKey: "sk-gw-team", maxRetries: 0 })
      .messages.stream({ model: "local/echo", max_tokens: 10, messages: [{ role: "user", content: "keyed" }] })
      .finalMessage();
    assert.equal(streamed.stop_reason, "end_turn");
  });

  it("a wrong or missing key is a 401 authentication_error; a model outside the key's list a 403 permission_error", async () => {
    await assert.rejects(ask(new Anthropic({ baseURL: gw.origin, apiKey: "sk-wrong", maxRetries: 0 })), (e: any) => {
      assert.ok(e instanceof Anthropic.AuthenticationError);
      assertAnthropicError(e.error, "authentication_error");
      return true;
    });
    const res = await fetch(`${gw.origin}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: "local/echo", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
    });
    assert.equal(res.status, 401);
    assertAnthropicError(await res.json(), "authentication_error");
    assert.ok(res.headers.get("request-id"));
    const limited = new Anthropic({ baseURL: gw.origin, apiKey: "sk-gw-echo", maxRetries: 0 });
    await assert.rejects(ask(limited, "claude-sonnet-4-5"), (e: any) => {
      assert.ok(e instanceof Anthropic.PermissionDeniedError);
      assertAnthropicError(e.error, "permission_error");
      return true;
    });
    await assert.rejects(limited.messages.countTokens({ model: "local/other", messages: [{ role: "user", content: "x" }] }), Anthropic.PermissionDeniedError);
    assert.equal((await limited.messages.countTokens({ model: "local/echo", messages: [{ role: "user", content: "x" }] })).input_tokens, 5);
  });
});
