/**
 * The HTTP door in front of a fake OpenAI upstream that speaks the real wire
 * protocol: ordering, the usage/finish invariant, client disconnects, and
 * upstream failures before and during a stream.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { chatChunk, chatEvents, completionChunk, startFakeOpenAi, usageChunk, type FakeScript, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";

describe("HTTP door with an OpenAI upstream", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream", timeoutMs: 400 } },
      limits: { idleTimeoutMs: 400 },
      // Faults are injected on purpose here: no retries, no circuit breaking.
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
    fake.requests.length = 0;
  });

  it("relays deltas in order and sends the upstream request with the model name and key", async () => {
    const parts = Array.from({ length: 50 }, (_, i) => ` w${i}`);
    fake.script = () => ({ events: chatEvents(parts, [7, 50]) });
    const stream = await client.chat.completions.create({
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "count" }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      seed: 42,
    });
    const got: string[] = [];
    const all: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) got.push(c.choices[0].delta.content);
      all.push(c);
      assertSchema("CreateChatCompletionStreamResponse", c);
    }
    assert.deepEqual(got, parts);
    assert.equal(all.at(-2)!.choices[0]!.finish_reason, "stop");
    const last = all.at(-1);
    assert.deepEqual(last!.choices, [], "with include_usage, usage comes on its own chunk with empty choices");
    assert.equal(last!.usage!.prompt_tokens, 7);
    assert.equal(last!.usage!.completion_tokens, 50);
    assert.equal(last!.model, "gpt-fake");
    const up = fake.requests[0]!;
    assert.equal(up.url, "/v1/chat/completions");
    assert.equal(up.headers.authorization, "Bearer sk-upstream");
    assert.equal(up.body.model, "gpt-fake");
    assert.equal(up.body.stream, true);
    assert.deepEqual(up.body.stream_options, { include_usage: true });
    assert.equal(up.body.temperature, 0.5);
    assert.equal(up.body.seed, 42, "unknown fields pass through to the upstream");
  });

  it("moves usage and finish_reason to the last chunk whatever the upstream order", async () => {
    // Usage first, finish in the middle, more text after it: the engine reorders.
    fake.script = () => ({
      events: [usageChunk(3, 2), chatChunk("a"), chatChunk(null, {}, "length"), chatChunk("b")],
    });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "x" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = parseSse(await res.text());
    assert.equal(events.at(-1)!.data, "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.deepEqual(
      chunks.map((c) => [c.choices[0]?.delta.content ?? null, c.choices[0]?.finish_reason ?? null, c.usage?.total_tokens ?? null]),
      [
        ["a", null, null],
        ["b", null, null],
        [null, "length", null],
        [null, null, 5],
      ],
    );
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
  });

  it("without include_usage, usage rides on the finish chunk and nowhere else", async () => {
    fake.script = () => ({ events: chatEvents(["x"], [4, 1]) });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const chunks = parseSse(await res.text()).slice(0, -1).map((e) => JSON.parse(e.data));
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === undefined));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).usage.total_tokens, 5);
  });

  it("relays legacy completions from the upstream's /completions", async () => {
    fake.script = () => ({ events: [completionChunk("foo"), completionChunk(" bar"), completionChunk("", "stop")] });
    const r = await client.completions.create({ model: "openai/gpt-fake", prompt: "say" });
    assert.equal(r.choices[0]!.text, "foo bar");
    assert.equal(fake.requests[0]!.url, "/v1/completions");
    assert.equal(fake.requests[0]!.body.prompt, "say");
  });

  // Not timed: the upstream's answer lasts 20 s (1,000 events 20 ms apart), so an abort seen
  // before it ends can only be the gateway passing on the client's leaving.
  it("aborts the upstream request when the client disconnects mid-stream, long before the upstream would end", async () => {
    fake.script = () => ({ events: chatEvents(Array.from({ length: 1000 }, (_, i) => `t${i} `)), delayMs: 20 });
    const controller = new AbortController();
    const res = await postJson(
      `${gw.baseUrl}/chat/completions`,
      { model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    const aborted = fake.nextAbort();
    let disconnectedAt = 0;
    await readSse(res, () => {
      if (++seen === 3) {
        disconnectedAt = performance.now();
        controller.abort();
        return "stop";
      }
      return undefined;
    }).catch(() => undefined);
    const rec = await aborted;
    assert.ok(rec.abortedAt! >= disconnectedAt, "the upstream request was closed after the client left");
    assert.ok(rec.abortedAt! - rec.receivedAt < 15_000, "closed long before its 20 s answer would have ended");
  });

  it("answers 502 with the OpenAI error body when the upstream fails before the stream", async () => {
    fake.script = () => ({ status: 503, errorBody: { error: { message: "engine overloaded", type: "server_error" } } });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    assert.equal(res.status, 502);
    const body: any = await res.json();
    assertSchema("ErrorResponse", body);
    assert.match(body.error.message, /engine overloaded/);
    assert.equal(body.error.type, "server_error");
  });

  it("keeps an upstream 4xx status and message, and Retry-After on 429", async () => {
    fake.script = () => ({
      status: 429,
      headers: { "retry-after": "7" },
      errorBody: { error: { message: "slow down", type: "requests", code: "rate_limit_exceeded", param: null } },
    });
    const err = await client.chat.completions
      .create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.headers.get("retry-after"), "7");
    assert.match(err.message, /slow down/);
    fake.script = () => ({ status: 404, errorBody: { error: { message: "no such model", type: "invalid_request_error", code: "model_not_found", param: "model" } } });
    const nf = await client.chat.completions.create({ model: "openai/nope", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    assert.ok(nf instanceof OpenAI.NotFoundError);
  });

  it("answers 504 when the upstream does not answer in time", async () => {
    fake.script = () => ({ headerDelayMs: 2000 });
    const aborted = fake.nextAbort();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    assert.equal(res.status, 504);
    const body: any = await res.json();
    assertSchema("ErrorResponse", body);
    assert.match(body.error.message, /did not start streaming within 400 ms/);
    await aborted; // the timed-out upstream request was aborted, not left running
  });

  it("counts SSE pings as life: a slow upstream that keeps pinging is not timed out, one that stops is", async () => {
    const ping = ": keep-alive\n\n";
    // 10 pings 100 ms apart (1 s) before the first token and between the two tokens; both timeouts are 400 ms.
    const pings = Array.from({ length: 10 }, () => ping);
    const [role, ...rest] = chatEvents(["slow", " answer"]);
    fake.script = () => ({ events: [...pings, role, rest[0], ...pings, ...rest.slice(1)], delayMs: 100 });
    const client = new OpenAI({ apiKey: "unused", baseURL: gw.baseUrl, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    assert.equal(text, "slow answer");

    // Pings, then silence: the idle timer runs from the last ping.
    fake.script = () => ({ events: [role, chatChunk("a"), ping, ping, ping, chatChunk("never sent")], delayMs: 100, stallAfter: 5 });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
    const body = await res.text();
    assert.match(body, /sent nothing for 400 ms/);
  });

  it("answers 502 when the upstream is unreachable", async () => {
    const gw2 = await startTestGateway({
      providers: { openai: { type: "openai", baseUrl: "http://127.0.0.1:9/v1" } },
    });
    try {
      const res = await postJson(`${gw2.baseUrl}/chat/completions`, { model: "openai/x", messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 502);
      assert.match(((await res.json()) as any).error.message, /unreachable/);
    } finally {
      await gw2.close();
    }
  });

  for (const [name, script, pattern] of [
    ["dies mid-stream", { events: chatEvents(["a", "b", "c", "d"]), destroyAfter: 3, delayMs: 20 }, /broke off/],
    ["closes without [DONE] or finish_reason", { events: [chatChunk("a"), chatChunk("b")], done: false }, /closed the stream before it finished/],
    ["sends malformed JSON", { events: [chatChunk("a"), "data: {not json\n\n"] }, /malformed JSON/],
    ["sends an in-band error", { events: [chatChunk("a"), { error: { message: "model crashed" } }] }, /model crashed/],
    ["stalls past the idle timeout", { events: chatEvents(["a", "b"]), stallAfter: 2 }, /sent nothing for 400 ms/],
  ] as Array<[string, FakeScript, RegExp]>) {
    it(`ends with an in-band error, never a silent truncation, when the upstream ${name}`, async () => {
      fake.script = () => script;
      const res = await postJson(`${gw.baseUrl}/chat/completions`, {
        model: "openai/gpt-fake",
        messages: [{ role: "user", content: "x" }],
        stream: true,
      });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text());
      const last = JSON.parse(events.at(-1)!.data);
      assert.ok(!events.some((e) => e.data === "[DONE]"), "an errored stream must not end with [DONE]");
      assert.match(last.error.message, pattern);
      assertSchema("ErrorResponse", last);
      assert.equal(JSON.parse(events[0]!.data).choices[0].delta.content, "a", "what was sent before the error is kept");
      // The SDK surfaces the in-band error as an exception.
      const stream = await client.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
      await assert.rejects(async () => {
        for await (const _ of stream) void _;
      }, pattern);
    });
  }

  it("rejects an upstream event larger than the limit instead of buffering it", async () => {
    fake.script = () => ({ events: [chatChunk("a"), chatChunk("x".repeat(9 * 1024 * 1024))] });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: "openai/gpt-fake",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const events = parseSse(await res.text());
    assert.match(JSON.parse(events.at(-1)!.data).error.message, /larger than/);
  });
});
