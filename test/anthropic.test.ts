/**
 * The Anthropic provider end to end: the official `openai` SDK talks to
 * Spillway, Spillway talks to a fake Anthropic Messages API speaking the real
 * SSE wire format. Covers request translation, all three text routes, stop
 * reasons, error mapping, mid-stream errors, truncation and client aborts.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import {
  errorEvent,
  messageEnd,
  messageStart,
  startFakeAnthropic,
  textAnswer,
  textBlock,
  type FakeAnthropic,
} from "./helpers/fake-anthropic.js";
import { applyEnv, parseConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { outputText, streamResponses, TEXT_SEQUENCE, typeSequence } from "./helpers/responses.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";

describe("anthropic provider", () => {
  let fake: FakeAnthropic;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeAnthropic();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: { anthropic: { type: "anthropic", baseUrl: fake.baseUrl, apiKey: "sk-ant-test", maxTokens: 321 } },
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

  it("streams a chat completion; the upstream request is a proper Messages API call", async () => {
    fake.script = () => ({ events: textAnswer(["Hel", "lo", " there"], [12, 3]) });
    const stream = await client.chat.completions.create({
      model: "anthropic/claude-fake-1",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "hi" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      stop: ["END"],
      user: "user-42",
      seed: 7,
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Hello there");
    // With include_usage: the finish chunk, then the usage chunk with `choices: []` (OpenAI's form).
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, "stop");
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual([last.usage!.prompt_tokens, last.usage!.completion_tokens, last.usage!.total_tokens], [12, 3, 15]);

    const req = fake.requests[0]!;
    assert.equal(req.url, "/v1/messages");
    assert.equal(req.headers["x-api-key"], "sk-ant-test");
    assert.equal(req.headers["anthropic-version"], "2023-06-01");
    assert.equal(req.headers["authorization"], undefined);
    assert.deepEqual(req.body, {
      model: "claude-fake-1",
      max_tokens: 321,
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      stream: true,
      system: "You are terse.",
      temperature: 0.2,
      stop_sequences: ["END"],
      metadata: { user_id: "user-42" },
    });
  });

  it("max_tokens from the request wins over the default; max_tokens stop → finish_reason length", async () => {
    fake.script = () => ({ events: [messageStart(4), ...textBlock(0, ["cut"]), ...messageEnd("max_tokens", 1)] });
    const r = await client.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }], max_tokens: 1 });
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.choices[0]!.message.content, "cut");
    assert.equal(fake.requests[0]!.body.max_tokens, 1);
  });

  it("serves legacy completions from a prompt", async () => {
    const r = await client.completions.create({ model: "anthropic/claude-fake-1", prompt: "say hi" });
    assert.equal(r.choices[0]!.text, "Hello from Claude");
    assert.deepEqual(fake.requests[0]!.body.messages, [{ role: "user", content: [{ type: "text", text: "say hi" }] }]);
  });

  it("responses.create({stream:true}) and responses.stream(...) complete, every event valid", async () => {
    const stream = await client.responses.create({ model: "anthropic/claude-fake-1", input: "hi", instructions: "be kind", stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(typeSequence(events.map((data) => ({ event: data.type, data }))), TEXT_SEQUENCE);
    assert.equal(fake.requests[0]!.body.system, "be kind");

    const runner = client.responses.stream({ model: "anthropic/claude-fake-1", input: [{ role: "user", content: "hi" }], max_output_tokens: 50 });
    const final = await runner.finalResponse();
    assert.equal(outputText(final), "Hello from Claude");
    assert.equal(final.usage!.input_tokens, 10);
    assert.equal(fake.requests[1]!.body.max_tokens, 50);

    const raw = await streamResponses(gw.baseUrl, { model: "anthropic/claude-fake-1", input: "hi" });
    assert.equal(raw.at(-1)!.data.type, "response.completed");
  });

  it("lists the upstream's models", async () => {
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === "anthropic/claude-fake-1"));
  });

  describe("errors before the stream keep a meaningful status", () => {
    const cases: Array<[string, number, string, number, boolean]> = [
      ["rate_limit_error", 429, "rate limited", 429, true],
      ["authentication_error", 401, "invalid x-api-key", 401, false],
      ["overloaded_error", 529, "Overloaded", 503, true],
      ["api_error", 500, "Internal server error", 502, true],
      ["invalid_request_error", 400, "messages: roles must alternate", 400, false],
    ];
    for (const [type, upstream, message, status] of cases) {
      it(`${type} (${upstream}) → ${status}`, async () => {
        fake.script = () => ({ status: upstream, errorType: type, errorMessage: message, headers: { "retry-after": "7" } });
        const res = await postJson(`${gw.baseUrl}/chat/completions`, {
          model: "anthropic/claude-fake-1",
          messages: [{ role: "user", content: "x" }],
          stream: true,
        });
        assert.equal(res.status, status);
        const j = (await res.json()) as { error: { message: string; type: string } };
        assert.ok(j.error.message.includes(message), j.error.message);
        if (status === 429) assert.equal(res.headers.get("retry-after"), "7");
      });
    }

    it("an error event before any content is an error status, not a stream", async () => {
      fake.script = () => ({ events: [messageStart(), errorEvent("overloaded_error", "Overloaded")] });
      const res = await postJson(`${gw.baseUrl}/responses`, { model: "anthropic/claude-fake-1", input: "x", stream: true });
      assert.equal(res.status, 503);
    });
  });

  describe("failures mid-stream are in-band, never a silent truncation", () => {
    const broken = (): unknown[] => [
      messageStart(),
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "partial" } },
      errorEvent("overloaded_error", "Overloaded"),
    ];

    it("chat: the content, then an error event naming the upstream's error", async () => {
      fake.script = () => ({ events: broken() });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.ok(!events.includes("[DONE]"));
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "partial");
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "upstream_overloaded");
      assert.match(err.message, /Overloaded/);
    });

    it("Responses: error then response.failed, both valid; the SDK sees them", async () => {
      fake.script = () => ({ events: broken() });
      const events = await streamResponses(gw.baseUrl, { model: "anthropic/claude-fake-1", input: "x" });
      const types = events.map((e) => e.data.type);
      assert.deepEqual(types.slice(-2), ["error", "response.failed"]);
      assert.equal(events.at(-2)!.data.code, "upstream_overloaded");
      const failed = events.at(-1)!.data.response;
      assert.equal(failed.status, "failed");
      assert.equal(failed.error.code, "server_error");
      assert.equal(failed.output[0].content[0].text, "partial");
      assert.equal(failed.output[0].status, "incomplete");

      const stream = await client.responses.create({ model: "anthropic/claude-fake-1", input: "x", stream: true });
      const seen: string[] = [];
      for await (const e of stream) seen.push(e.type);
      assert.deepEqual(seen.slice(-2), ["error", "response.failed"]);
    });

    it("a body that ends before message_stop fails as truncated", async () => {
      fake.script = () => ({ events: [messageStart(), ...textBlock(0, ["half"])] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }], stream: true });
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.equal(JSON.parse(events.at(-1)!).error.code, "upstream_truncated");
    });

    it("a non-streamed request that fails mid-stream gets an error status", async () => {
      fake.script = () => ({ events: broken() });
      const res = await postJson(`${gw.baseUrl}/responses`, { model: "anthropic/claude-fake-1", input: "x" });
      assert.equal(res.status, 503);
    });
  });

  it("ping events are life: a long wait with pings is served, pings that stop time out", async () => {
    const slow = await startTestGateway({
      limits: { timeoutMs: 400, idleTimeoutMs: 400 },
      routing: { maxAttempts: 1 },
      providers: { anthropic: { type: "anthropic", baseUrl: fake.baseUrl, apiKey: "sk-ant-test" } },
    });
    try {
      const pings = Array.from({ length: 10 }, () => ({ type: "ping" }));
      // 1 s of pings (100 ms apart) before the first token, with 400 ms timeouts.
      fake.script = () => ({ events: [messageStart(), ...pings, ...textBlock(0, ["thought", " through"]), ...messageEnd("end_turn", 2)], delayMs: 100 });
      const c = new OpenAI({ baseURL: slow.baseUrl, apiKey: "unused", maxRetries: 0 });
      const stream = await c.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }], stream: true });
      let text = "";
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? "";
      assert.equal(text, "thought through");

      fake.script = () => ({ events: [messageStart(), ...pings.slice(0, 3), ...textBlock(0, ["never"])], delayMs: 100, stallAfter: 4 });
      const res = await postJson(`${slow.baseUrl}/chat/completions`, { model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 504);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /did not start streaming within 400 ms/);
    } finally {
      await slow.close();
    }
  });

  it("a client that disconnects mid-stream aborts the upstream request", async () => {
    fake.script = () => ({ events: textAnswer(Array.from({ length: 200 }, (_, i) => `w${i} `)), delayMs: 20 });
    const aborted = fake.nextAbort();
    const res = await postJson(`${gw.baseUrl}/responses`, { model: "anthropic/claude-fake-1", input: "x", stream: true });
    let deltas = 0;
    await readSse(res, (e) => (e.event === "response.output_text.delta" && ++deltas >= 3 ? "stop" : undefined));
    const rec = await aborted;
    assert.ok(rec.abortedAt !== undefined);
    assert.equal(rec.url, "/v1/messages");
  });
});

describe("anthropic provider retries", () => {
  it("overloaded_error (529) is retryable: the engine's retry gets the answer", async () => {
    let n = 0;
    const fake = await startFakeAnthropic(() => (n++ === 0 ? { status: 529, errorType: "overloaded_error", errorMessage: "Overloaded" } : {}));
    const gw = await startTestGateway({
      routing: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, breakerThreshold: 1000 },
      providers: { anthropic: { type: "anthropic", baseUrl: fake.baseUrl, apiKey: "k" } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.responses.create({ model: "anthropic/claude-fake-1", input: "x" });
      assert.equal(r.output_text, "Hello from Claude");
      assert.equal(fake.requests.length, 2);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("anthropic provider with several keys", () => {
  it("a key Anthropic refuses rests, and the retry uses another", async () => {
    const fake = await startFakeAnthropic((req) =>
      req.headers["x-api-key"] === "sk-ant-bad" ? { status: 401, errorType: "authentication_error", errorMessage: "invalid x-api-key" } : {},
    );
    const gw = await startTestGateway({
      routing: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, breakerThreshold: 1000 },
      providers: { anthropic: { type: "anthropic", baseUrl: fake.baseUrl, apiKeys: [{ key: "sk-ant-bad" }, { key: "sk-ant-good" }] } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      for (let i = 0; i < 4; i++) {
        const r = await client.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }] });
        assert.equal(r.choices[0]!.message.content, "Hello from Claude");
      }
      assert.ok(fake.requests.filter((r) => r.headers["x-api-key"] === "sk-ant-bad").length <= 1, "the refused key rests");
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("anthropic provider from the environment and content translation", () => {
  let fake: FakeAnthropic;
  let gateway: Gateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeAnthropic();
    const raw = applyEnv(
      { http: { host: "127.0.0.1", port: 0 }, grpc: { enabled: false }, providers: { local: { type: "local", tokenDelayMs: 0 } } },
      { ANTHROPIC_API_KEY: "sk-ant-env", ANTHROPIC_BASE_URL: fake.baseUrl },
    );
    gateway = await startGateway(parseConfig(raw));
    client = new OpenAI({ baseURL: `http://127.0.0.1:${gateway.httpPort}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await fake.close();
  });

  it("ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL configure anthropic/… with the 4096 max_tokens default", async () => {
    const r = await client.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "x" }] });
    assert.equal(r.choices[0]!.message.content, "Hello from Claude");
    assert.equal(fake.requests.at(-1)!.headers["x-api-key"], "sk-ant-env");
    assert.equal(fake.requests.at(-1)!.body.max_tokens, 4096);
  });

  it("images (data: and https URLs) become image blocks; developer messages join the system prompt", async () => {
    await client.responses.create({
      model: "anthropic/claude-fake-1",
      instructions: "one",
      input: [
        { role: "developer", content: "two" },
        {
          role: "user",
          content: [
            { type: "input_text", text: "what is this?" },
            { type: "input_image", image_url: "data:image/png;base64,iVBORw0KGgo=", detail: "auto" },
            { type: "input_image", image_url: "https://example.com/cat.jpg", detail: "auto" },
          ],
        },
      ],
    });
    const body = fake.requests.at(-1)!.body;
    assert.equal(body.system, "one\n\ntwo");
    assert.deepEqual(body.messages, [
      {
        role: "user",
        content: [
          { type: "text", text: "what is this?" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
        ],
      },
    ]);
  });
});
