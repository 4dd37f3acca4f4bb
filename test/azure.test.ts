/**
 * The Azure OpenAI provider end to end: the official `openai` SDK talks to
 * Spillway, Spillway talks to a fake Azure resource that checks routes,
 * `api-key` and `api-version`. The fake itself is checked against the
 * `openai` SDK's own `AzureOpenAI` client.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI, { AzureOpenAI } from "openai";
import { applyEnv, parseConfig } from "../src/config/load.js";
import { azureChunk, azureUsage, filtered, promptFilterChunk, startFakeAzure, type FakeAzure } from "./helpers/fake-azure.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";
import { upstreamResponses } from "./helpers/upstream-responses.js";

const VERSION = "2024-10-21";
const ID = "azure/gpt4o-prod";
const CHAT_PATH = `/openai/deployments/gpt4o-prod/chat/completions?api-version=${VERSION}`;

describe("fake Azure against the openai SDK's AzureOpenAI", () => {
  it("AzureOpenAI streams from the fake (api-key, deployment route, api-version) and gets its first empty-choices chunk", async () => {
    const fake = await startFakeAzure();
    try {
      const sdk = new AzureOpenAI({ endpoint: fake.endpoint, apiKey: "azure-key-1", apiVersion: VERSION, deployment: "gpt4o-prod", maxRetries: 0 });
      const stream = await sdk.chat.completions.create({ model: "ignored-by-azure", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      assert.equal(fake.requests[0]!.url, CHAT_PATH);
      assert.equal(fake.requests[0]!.headers["api-key"], "azure-key-1");
      assert.deepEqual(chunks[0]!.choices, [], "Azure's first chunk carries only prompt_filter_results");
      assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Hello from Azure");
      assert.equal(chunks.at(-1)!.usage!.total_tokens, 12);

      const entra = new AzureOpenAI({ endpoint: fake.endpoint, azureADTokenProvider: () => Promise.resolve("entra-token-1"), apiVersion: VERSION, deployment: "gpt4o-prod", maxRetries: 0 });
      const r = await entra.chat.completions.create({ model: "x", messages: [{ role: "user", content: "hi" }] });
      assert.equal(r.choices[0]!.message.content, "Hello from Azure");
      assert.equal(fake.requests[1]!.headers["authorization"], "Bearer entra-token-1");

      const wrong = new AzureOpenAI({ endpoint: fake.endpoint, apiKey: "nope", apiVersion: VERSION, deployment: "gpt4o-prod", maxRetries: 0 });
      await assert.rejects(wrong.chat.completions.create({ model: "x", messages: [{ role: "user", content: "hi" }] }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
      const badVersion = new AzureOpenAI({ endpoint: fake.endpoint, apiKey: "azure-key-1", apiVersion: "1999-01-01", deployment: "gpt4o-prod", maxRetries: 0 });
      await assert.rejects(badVersion.chat.completions.create({ model: "x", messages: [{ role: "user", content: "hi" }] }), (e: unknown) => e instanceof OpenAI.NotFoundError);
    } finally {
      await fake.close();
    }
  });
});

describe("azure provider", () => {
  let fake: FakeAzure;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeAzure();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        azure: { type: "azure", baseUrl: fake.endpoint, apiKey: "azure-key-1", apiVersion: VERSION, models: ["gpt4o-prod", "tts-prod"] },
        entra: { type: "azure", baseUrl: `${fake.endpoint}/openai`, azureAdToken: "entra-token-1", apiVersion: VERSION },
        wrongkey: { type: "azure", baseUrl: fake.endpoint, apiKey: "not-the-key", apiVersion: VERSION },
        azv1: { type: "azure", baseUrl: fake.endpoint, apiKey: "azure-key-1", apiVersion: "v1" },
      },
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

  it("streams a chat completion through the deployment route with api-key, api-version and include_usage", async () => {
    const stream = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true }, temperature: 0.3 });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Hello from Azure");
    assert.equal(chunks.findLast((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, "stop");
    assert.deepEqual([chunks.at(-1)!.usage!.prompt_tokens, chunks.at(-1)!.usage!.completion_tokens], [9, 3]);
    const req = fake.requests[0]!;
    assert.equal(req.url, CHAT_PATH);
    assert.equal(req.headers["api-key"], "azure-key-1");
    assert.equal(req.headers["authorization"], undefined);
    assert.deepEqual(req.body.stream_options, { include_usage: true });
    assert.equal(req.body.temperature, 0.3);
  });

  it("non-streamed chat completions (usage arrives because include_usage is always sent upstream)", async () => {
    const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "hi" }] });
    assertSchema("CreateChatCompletionResponse", r);
    assert.equal(r.choices[0]!.message.content, "Hello from Azure");
    assert.equal(r.usage!.total_tokens, 12);
  });

  it("an Entra ID token goes as a bearer token, never as api-key; a trailing /openai in the endpoint is accepted", async () => {
    const r = await client.chat.completions.create({ model: "entra/gpt4o-prod", messages: [{ role: "user", content: "hi" }] });
    assert.equal(r.choices[0]!.message.content, "Hello from Azure");
    assert.equal(fake.requests[0]!.url, CHAT_PATH);
    assert.equal(fake.requests[0]!.headers["authorization"], "Bearer entra-token-1");
    assert.equal(fake.requests[0]!.headers["api-key"], undefined);
  });

  it("parallel tool calls through the shared mapper: indexes, ids, finish_reason tool_calls", async () => {
    const call = (index: number, id: string | undefined, name: string | undefined, args: string): unknown =>
      azureChunk({ tool_calls: [{ index, ...(id ? { id, type: "function" } : {}), function: { ...(name ? { name } : {}), arguments: args } }] });
    fake.script = () => ({
      chunks: [promptFilterChunk(), azureChunk({ role: "assistant", content: null }, null, {}), call(0, "call_a", "f", ""), call(0, undefined, undefined, '{"x":'), call(1, "call_b", "g", '{"y":2}'), call(0, undefined, undefined, "1}"), azureChunk({}, "tool_calls"), azureUsage(4, 4)],
    });
    const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "go" }], tools: [{ type: "function", function: { name: "f" } }, { type: "function", function: { name: "g" } }] });
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assert.deepEqual(
      r.choices[0]!.message.tool_calls!.map((c) => [c.id, c.type === "function" ? c.function.name : "", c.type === "function" ? c.function.arguments : ""]),
      [
        ["call_a", "f", '{"x":1}'],
        ["call_b", "g", '{"y":2}'],
      ],
    );
  });

  describe("content filtering is mapped, not dropped", () => {
    it("a filtered answer chunk ends with finish_reason content_filter", async () => {
      fake.script = () => ({ chunks: [promptFilterChunk(), azureChunk({ content: "Some" }), azureChunk({ content: "" }, null, filtered("violence")), azureChunk({}, "stop")] });
      const stream = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      let finish: string | null = null;
      let text = "";
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? "";
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(text, "Some");
      assert.equal(finish, "content_filter");
    });

    it("Azure's own finish_reason content_filter passes through", async () => {
      fake.script = () => ({ chunks: [promptFilterChunk(), azureChunk({ content: "Par" }), azureChunk({}, "content_filter")] });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.finish_reason, "content_filter");
    });

    it("a filtered prompt (prompt_filter_results) is a content_filter finish", async () => {
      fake.script = () => ({ chunks: [promptFilterChunk(filtered("hate", "medium")), azureChunk({}, "stop")] });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.finish_reason, "content_filter");
    });

    it("a prompt Azure refuses (400 content_filter) keeps its status and code", async () => {
      fake.script = () => ({
        status: 400,
        errorBody: { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: null, param: "prompt", code: "content_filter", status: 400, innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: filtered("hate") } } },
      });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 400);
      const j = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(j.error.code, "content_filter");
      assert.match(j.error.message, /content management policy/);
    });
  });

  describe("errors before the stream keep their meaning", () => {
    it("a key Azure refuses → 401", async () => {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "wrongkey/gpt4o-prod", messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /Access denied/);
    });

    it("an unknown deployment → 404", async () => {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "azure/no-such-deployment", messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 404);
      assert.equal(fake.requests[0]!.url, `/openai/deployments/no-such-deployment/chat/completions?api-version=${VERSION}`);
    });

    for (const [upstream, status] of [
      [429, 429],
      [500, 502],
      [503, 502],
    ] as const) {
      it(`${upstream} → ${status}`, async () => {
        fake.script = () => ({ status: upstream, headers: { "retry-after": "3" }, errorBody: { error: { code: String(upstream), message: `azure says ${upstream}` } } });
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
        assert.equal(res.status, status);
        if (status === 429) assert.equal(res.headers.get("retry-after"), "3");
      });
    }
  });

  it("a body cut before [DONE] is reported as truncated, in-band after the content", async () => {
    fake.script = () => ({ chunks: [promptFilterChunk(), azureChunk({ content: "partial" }), azureChunk({ content: " more" })], destroyAfter: 2, delayMs: 30 });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
    assert.equal(res.status, 200);
    const events = parseSse(await res.text()).map((e) => e.data);
    assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "partial");
    assert.ok(!events.includes("[DONE]"));
    assert.notEqual(JSON.parse(events.at(-1)!).error, undefined);
  });

  it("a client that disconnects mid-stream aborts the upstream request", async () => {
    fake.script = () => ({ parts: Array.from({ length: 200 }, (_, i) => `w${i} `), delayMs: 20 });
    const aborted = fake.nextAbort();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
    let n = 0;
    await readSse(res, () => (++n >= 3 ? "stop" : undefined));
    const rec = await aborted;
    assert.ok(rec.abortedAt !== undefined);
    assert.equal(rec.url, CHAT_PATH);
  });

  it("legacy completions and speech go to the deployment's own routes", async () => {
    fake.script = () => ({ chunks: [{ id: "cmpl-1", object: "text_completion", created: 1, model: "m", choices: [{ text: "done", index: 0, finish_reason: "stop", logprobs: null }] }] });
    const c = await client.completions.create({ model: ID, prompt: "say done" });
    assert.equal(c.choices[0]!.text, "done");
    assert.equal(fake.requests[0]!.url, `/openai/deployments/gpt4o-prod/completions?api-version=${VERSION}`);

    fake.script = () => ({});
    const speech = await client.audio.speech.create({ model: "azure/tts-prod", input: "Hi.", voice: "alloy" });
    assert.ok(Buffer.from(await speech.arrayBuffer()).toString().startsWith("ID3"));
    assert.equal(fake.requests[1]!.url, `/openai/deployments/tts-prod/audio/speech?api-version=${VERSION}`);
    assert.equal(fake.requests[1]!.headers["api-key"], "azure-key-1");

    const t = await client.audio.transcriptions.create({ model: "azure/tts-prod", file: new File([Buffer.from("RIFFfake")], "a.wav", { type: "audio/wav" }) });
    assert.equal(t.text, "hello azure");
    assert.equal(fake.requests[2]!.url, `/openai/deployments/tts-prod/audio/transcriptions?api-version=${VERSION}`);
  });

  it("apiVersion v1: chats go to /openai/v1/responses with the deployment as model", async () => {
    fake.script = () => ({ chunks: upstreamResponses({ text: ["Hi ", "v1"], usage: { input: 3, output: 2 } }), done: false });
    const r = await client.chat.completions.create({ model: "azv1/gpt4o-prod", messages: [{ role: "user", content: "x" }] });
    assert.equal(r.choices[0]!.message.content, "Hi v1");
    assert.equal(fake.requests[0]!.url, "/openai/v1/responses");
    assert.equal(fake.requests[0]!.body.model, "gpt4o-prod");
    assert.equal(fake.requests[0]!.headers["api-key"], "azure-key-1");
  });

  it("lists its deployments (configured, or the data plane's deployments list); /readyz names the provider", async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes("azure/gpt4o-prod") && ids.includes("azure/tts-prod"));
    assert.ok(ids.includes("entra/gpt4o-prod") && ids.includes("entra/tts-prod"), "fetched with the Entra token");
    const list = fake.requests.find((q) => q.url === "/openai/deployments?api-version=2022-12-01" && q.headers["authorization"] === "Bearer entra-token-1");
    assert.ok(list);
    const ready = (await (await fetch(`${gw.origin}/readyz`)).json()) as { providers: Array<{ name: string; state: string }> };
    assert.equal(ready.providers.find((p) => p.name === "azure")?.state, "ok");
  });
});

describe("azure provider fallback and config", () => {
  it("falls back to another provider before the first byte when Azure fails", async () => {
    const fake = await startFakeAzure(() => ({ status: 500 }));
    const gw = await startTestGateway({
      routing: { maxAttempts: 1, fallbacks: { [ID]: ["local/echo"] } },
      providers: { azure: { type: "azure", baseUrl: fake.endpoint, apiKey: "azure-key-1", apiVersion: VERSION } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "echo me" }] });
      assert.equal(r.model, "echo");
      assert.equal(fake.requests.length, 1);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("several keys rotate in api-key: a key Azure refuses rests and the retry uses another", async () => {
    const fake = await startFakeAzure();
    const gw = await startTestGateway({
      routing: { maxAttempts: 3, baseDelayMs: 1 },
      providers: { azure: { type: "azure", baseUrl: fake.endpoint, apiKeys: [{ key: "revoked", name: "old" }, { key: "azure-key-1", name: "new" }], apiVersion: VERSION } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] }).withResponse();
        assert.equal(r.data.choices[0]!.message.content, "Hello from Azure");
        assert.equal(r.response.headers.get("x-spillway-key"), "new");
      }
      assert.ok(fake.requests.every((q) => q.headers["authorization"] === undefined && typeof q.headers["api-key"] === "string"));
      assert.ok(fake.requests.filter((q) => q.headers["api-key"] === "revoked").length <= 1, "the refused key rests");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY / OPENAI_API_VERSION configure azure/…, as AzureOpenAI reads them", () => {
    const c = parseConfig(applyEnv({}, { AZURE_OPENAI_ENDPOINT: "https://res.openai.azure.com", AZURE_OPENAI_API_KEY: "k", OPENAI_API_VERSION: VERSION }));
    assert.deepEqual(c.providers["azure"], { type: "azure", baseUrl: "https://res.openai.azure.com", apiKey: "k", apiVersion: VERSION });
  });

  it("config errors name the field", () => {
    assert.throws(() => parseConfig(applyEnv({ providers: { a: { type: "azure", baseUrl: "https://r.openai.azure.com" } } }, {})), /providers\.a\.apiVersion/);
    assert.throws(() => parseConfig(applyEnv({ providers: { a: { type: "azure", baseUrl: "https://r.openai.azure.com", apiVersion: VERSION, apiKey: "k", azureAdToken: "t" } } }, {})), /providers\.a\.azureAdToken/);
    assert.throws(() => parseConfig(applyEnv({ providers: { a: { type: "azure", apiVersion: VERSION } } }, {})), /providers\.a\.baseUrl/);
  });
});
