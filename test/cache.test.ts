/**
 * The response cache end to end: hits and misses through the openai SDK on
 * chat and Responses, replayed as chunks equal to the original (modulo ids
 * and timestamps) and valid against the OpenAPI schemas; usage marked as
 * cached; failed and cut streams never stored; speech cached; gRPC through
 * the same engine cache; the byte bound under overfill; two gateways sharing
 * hits through one real redis-server.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { pino } from "pino";
import { MemoryCacheStore } from "../src/engine/cache/memory-cache-store.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startFakeOpenAiAudio } from "./helpers/fake-openai-audio.js";
import { assertAnthropicStream, recordingFetch } from "./helpers/anthropic-events.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";
import { redisSkip, startRedis } from "./helpers/redis.js";
import { parseSse, postJson } from "./helpers/sse.js";

const KEY_A = "sk-gateway-team-a";
const KEY_B = "sk-gateway-team-b";
const PARTS = ["The ", "quick ", "brown ", "fox"];

/** Drops what legitimately differs between an original and its replay: ids, timestamps, cached-token counts. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (["id", "created", "created_at", "item_id", "response_id", "cached_tokens", "completed_at"].includes(k)) continue;
      out[k] = normalize(x);
    }
    return out;
  }
  return v;
}

async function metric(origin: string, name: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("response cache", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  const lines: any[] = [];
  const clientA = (): OpenAI => new OpenAI({ baseURL: gw.baseUrl, apiKey: KEY_A, maxRetries: 0 });
  const clientB = (): OpenAI => new OpenAI({ baseURL: gw.baseUrl, apiKey: KEY_B, maxRetries: 0 });

  before(async () => {
    fake = await startFakeOpenAi(() => ({ events: chatEvents(PARTS, [7, 4]) }));
    const dest = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    });
    gw = await startTestGateway(
      {
        cache: { enabled: true, ttlSeconds: 300, maxBytes: 268435456 },
        aliases: { fast: "openai/gpt-fake" },
        auth: { keys: [{ key: KEY_A, name: "team-a" }, { key: KEY_B, name: "team-b" }] },
        routing: { maxAttempts: 1 },
        providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream" } },
      },
      { logger: pino({ level: "info" }, dest) },
    );
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  async function chat(client: OpenAI, body: Record<string, unknown>, headers: Record<string, string> = {}) {
    const { data, response } = await client.chat.completions
      .create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "tell me" }], stream: true, stream_options: { include_usage: true }, ...body } as OpenAI.ChatCompletionCreateParamsStreaming, { headers })
      .withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of data) {
      assertSchema("CreateChatCompletionStreamResponse", c);
      chunks.push(c);
    }
    return { chunks, cache: response.headers.get("x-spillway-cache"), requestId: response.headers.get("x-request-id") };
  }

  it("chat: a miss is stored; the same request (another key, an alias, another request id) replays chunk by chunk", async () => {
    const before = fake.requests.length;
    const first = await chat(clientA(), { temperature: 0.3, messages: [{ role: "user", content: "chat one" }] }, { "x-request-id": "cache-chat-1" });
    assert.equal(first.cache, "miss");
    assert.equal(fake.requests.length, before + 1);
    const again = await chat(clientB(), { model: "fast", temperature: 0.3, messages: [{ role: "user", content: "chat one" }] }, { "x-request-id": "cache-chat-2" });
    assert.equal(again.cache, "hit");
    assert.equal(fake.requests.length, before + 1, "a hit never reaches the upstream");
    assert.ok(again.chunks.length >= PARTS.length + 2, "replayed as chunks, not one aggregated chunk");
    assert.deepEqual(normalize(again.chunks), normalize(first.chunks));
    assert.deepEqual(
      again.chunks.map((c) => c.choices[0]?.delta.content ?? null).filter((t) => t),
      PARTS,
    );
    assert.notEqual(again.chunks[0]!.id, first.chunks[0]!.id, "the replay is a new stream with its own id");
    // The original usage, marked as cached.
    const usage = again.chunks.at(-1)!.usage!;
    assert.equal(usage.prompt_tokens, 7);
    assert.equal(usage.completion_tokens, 4);
    assert.equal(usage.prompt_tokens_details?.cached_tokens, 7);
    assert.equal(first.chunks.at(-1)!.usage!.prompt_tokens_details?.cached_tokens, 0);
    // A log field and a metric say so.
    const line = lines.find((l) => l.requestId === "cache-chat-2");
    assert.equal(line?.cache, "hit");
    assert.equal(line?.cachedInputTokens, 7);
    assert.equal(lines.find((l) => l.requestId === "cache-chat-1")?.cache, "miss");
    assert.ok((await metric(gw.origin, 'spillway_cache_requests_total{result="hit"}')) >= 1);
    assert.ok((await metric(gw.origin, "spillway_cache_bytes")) > 0);
  });

  it("chat: a different sampling parameter or message is a different entry", async () => {
    await chat(clientA(), { temperature: 0.1, messages: [{ role: "user", content: "chat two" }] });
    const before = fake.requests.length;
    assert.equal((await chat(clientA(), { temperature: 0.2, messages: [{ role: "user", content: "chat two" }] })).cache, "miss");
    assert.equal((await chat(clientA(), { temperature: 0.1, messages: [{ role: "user", content: "chat two!" }] })).cache, "miss");
    assert.equal(fake.requests.length, before + 2);
    assert.equal((await chat(clientA(), { temperature: 0.1, messages: [{ role: "user", content: "chat two" }] })).cache, "hit");
  });

  it("x-spillway-cache: refresh goes upstream and replaces the entry, bypass neither reads nor stores, anything else is a 400", async () => {
    const body = { messages: [{ role: "user", content: "modes" }] };
    assert.equal((await chat(clientA(), body)).cache, "miss");
    let before = fake.requests.length;
    assert.equal((await chat(clientA(), body, { "x-spillway-cache": "use" })).cache, "hit");
    assert.equal(fake.requests.length, before);
    fake.script = () => ({ events: chatEvents(["fresh"], [7, 1]) });
    const refreshed = await chat(clientA(), body, { "x-spillway-cache": "refresh" });
    assert.equal(refreshed.cache, "miss");
    assert.equal(fake.requests.length, before + 1);
    const after = await chat(clientA(), body);
    assert.equal(after.cache, "hit");
    assert.deepEqual(after.chunks.map((c) => c.choices[0]?.delta.content).filter(Boolean), ["fresh"], "refresh replaced the entry");
    fake.script = () => ({ events: chatEvents(PARTS, [7, 4]) });
    before = fake.requests.length;
    const bypass = await chat(clientA(), { messages: [{ role: "user", content: "bypassed" }] }, { "x-spillway-cache": "bypass" });
    assert.equal(bypass.cache, null);
    assert.equal((await chat(clientA(), { messages: [{ role: "user", content: "bypassed" }] })).cache, "miss", "bypass stored nothing");
    assert.equal(fake.requests.length, before + 2);
    const bad = await postJson(`${gw.baseUrl}/chat/completions`, { model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true }, { headers: { authorization: `Bearer ${KEY_A}`, "x-spillway-cache": "sometimes" } });
    assert.equal(bad.status, 400);
    const err = (await bad.json()) as { error: { message: string; param: string } };
    assert.equal(err.error.param, "x-spillway-cache");
    assert.match(err.error.message, /use, refresh, bypass/);
  });

  it("a stream that failed before its first chunk or was cut mid-way is never stored", async () => {
    const body = { messages: [{ role: "user", content: "fails" }] };
    fake.script = () => ({ status: 500 });
    await assert.rejects(chat(clientA(), body), (e: unknown) => e instanceof OpenAI.APIError && e.status === 502);
    fake.script = () => ({ events: chatEvents(PARTS, [7, 4]), destroyAfter: 3, delayMs: 20 });
    const cut = await postJson(`${gw.baseUrl}/chat/completions`, { model: "openai/gpt-fake", ...body, stream: true, stream_options: { include_usage: true } }, { headers: { authorization: `Bearer ${KEY_A}` } });
    assert.equal(cut.status, 200, await cut.clone().text());
    assert.equal(cut.headers.get("x-spillway-cache"), "miss");
    const text = await cut.text();
    assert.match(text, /"error"/, "the cut stream ends with an in-band error");
    fake.script = () => ({ events: chatEvents(PARTS, [7, 4]) });
    const before = fake.requests.length;
    const ok = await chat(clientA(), body);
    assert.equal(ok.cache, "miss", "neither failure was cached");
    assert.equal(fake.requests.length, before + 1);
    assert.equal((await chat(clientA(), body)).cache, "hit", "the complete one was");
  });

  it("a client that leaves mid-stream stores nothing", async () => {
    const body = { model: "openai/gpt-fake", messages: [{ role: "user", content: "left early" }], stream: true };
    fake.script = () => ({ events: chatEvents(PARTS, [7, 4]), delayMs: 30 });
    const ac = new AbortController();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, body, { headers: { authorization: `Bearer ${KEY_A}` }, signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    const aborted = fake.nextAbort();
    ac.abort();
    await aborted;
    fake.script = () => ({ events: chatEvents(PARTS, [7, 4]) });
    const again = await postJson(`${gw.baseUrl}/chat/completions`, body, { headers: { authorization: `Bearer ${KEY_A}` } });
    await again.text();
    assert.equal(again.headers.get("x-spillway-cache"), "miss");
  });

  it("Responses: miss then hit through the SDK, the events equal and valid against ResponseStreamEvent", async () => {
    const run = async () => {
      const { data, response } = await clientA().responses.create({ model: "openai/gpt-fake", input: "responses one", stream: true }).withResponse();
      const events: any[] = [];
      for await (const e of data) {
        assertSchema("ResponseStreamEvent", e);
        events.push(e);
      }
      return { events, cache: response.headers.get("x-spillway-cache") };
    };
    const before = fake.requests.length;
    const first = await run();
    const again = await run();
    assert.equal(first.cache, "miss");
    assert.equal(again.cache, "hit");
    assert.equal(fake.requests.length, before + 1);
    assert.ok(again.events.filter((e) => e.type === "response.output_text.delta").length >= PARTS.length, "deltas, not one aggregated event");
    assert.deepEqual(normalize(again.events), normalize(first.events));
    const done = again.events.at(-1);
    assert.equal(done.type, "response.completed");
    assert.equal(done.response.usage.input_tokens, 7);
    assert.equal(done.response.usage.input_tokens_details.cached_tokens, 7);
  });

  it("Anthropic Messages: miss then hit through the Anthropic SDK, frames equal and checked, usage as cache reads", async () => {
    const rec = recordingFetch();
    const client = new Anthropic({ baseURL: gw.origin, apiKey: KEY_A, fetch: rec.fetch, maxRetries: 0 });
    const run = async () => {
      const stream = client.messages.stream({ model: "openai/gpt-fake", max_tokens: 100, messages: [{ role: "user", content: "anthropic one" }] });
      const msg = await stream.finalMessage();
      const response = await stream.withResponse().then((r) => r.response);
      const checked = assertAnthropicStream(await rec.bodies.at(-1)!);
      return { msg, frames: checked.frames, cache: response.headers.get("x-spillway-cache") };
    };
    const before = fake.requests.length;
    const first = await run();
    const again = await run();
    assert.equal(first.cache, "miss");
    assert.equal(again.cache, "hit");
    assert.equal(fake.requests.length, before + 1);
    assert.equal(again.msg.content.map((b) => (b.type === "text" ? b.text : "")).join(""), PARTS.join(""));
    assert.ok(again.frames.filter((f) => f.event === "content_block_delta").length >= PARTS.length, "deltas, not one aggregated block");
    const strip = (frames: typeof first.frames) => normalize(JSON.parse(JSON.stringify(frames).replace(/"(input_tokens|cache_read_input_tokens)":\d+/g, '"$1":0')));
    assert.deepEqual(strip(again.frames), strip(first.frames));
    assert.equal(first.msg.usage.cache_read_input_tokens, 0);
    assert.equal(again.msg.usage.cache_read_input_tokens, 7, "the original input tokens, reported as cache reads");
    assert.equal(again.msg.usage.output_tokens, 4);
  });

  it("gRPC Generate goes through the same cache (chunks equal, usage marked)", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    const md = (): Metadata => {
      const m = new Metadata();
      m.set("authorization", `Bearer ${KEY_A}`);
      return m;
    };
    const first = await readAll(client.generate(generateRequest("local/echo", "grpc cached words here"), md()));
    const again = await readAll(client.generate(generateRequest("local/echo", "grpc cached words here"), md()));
    const bypass = md();
    bypass.set("x-spillway-cache", "bypass");
    const third = await readAll(client.generate(generateRequest("local/echo", "grpc cached words here"), bypass));
    client.close();
    assert.equal(first.error, undefined);
    const strip = (cs: typeof first.chunks) => cs.map((c) => ({ seq: c.seq, payload: c.payload?.$case === "usage" ? { ...c.payload, value: { ...c.payload.value, cachedInputTokens: 0 } } : c.payload }));
    assert.deepEqual(strip(again.chunks), strip(first.chunks));
    assert.notEqual(again.chunks[0]!.streamId, first.chunks[0]!.streamId);
    const usage = (cs: typeof first.chunks) => cs.find((c) => c.payload?.$case === "usage")!.payload!.value as { inputTokens: number; cachedInputTokens: number };
    assert.equal(usage(first.chunks).cachedInputTokens, 0);
    assert.equal(usage(again.chunks).cachedInputTokens, usage(again.chunks).inputTokens);
    assert.equal(usage(third.chunks).cachedInputTokens, 0, "bypass metadata went to the provider");
  });
});

describe("response cache: per-key opt-in", () => {
  it("with cache.enabled false, a key with cache: true uses it by default; others only with the header", async () => {
    const fake = await startFakeOpenAi(() => ({ events: chatEvents(PARTS, [7, 4]) }));
    const gw = await startTestGateway({
      grpc: { enabled: false },
      auth: { keys: [{ key: KEY_A, name: "opted-in", cache: true }, { key: KEY_B, name: "plain" }] },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "k" } },
    });
    try {
      const ask = async (key: string, content: string, headers: Record<string, string> = {}) => {
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "openai/gpt-fake", messages: [{ role: "user", content }], stream: true }, { headers: { authorization: `Bearer ${key}`, ...headers } });
        await res.text();
        return res.headers.get("x-spillway-cache");
      };
      assert.equal(await ask(KEY_A, "opt in"), "miss");
      assert.equal(await ask(KEY_A, "opt in"), "hit");
      assert.equal(await ask(KEY_B, "plain key"), null, "a key without cache: true bypasses by default");
      assert.equal(await ask(KEY_B, "plain key"), null);
      assert.equal(fake.requests.length, 3);
      assert.equal(await ask(KEY_B, "opt in", { "x-spillway-cache": "use" }), "hit", "the header opts one request in");
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("response cache: speech", () => {
  it("caches streamed /v1/audio/speech (SSE and raw bytes) and replays it as the same deltas", async () => {
    const audio = Buffer.alloc(30_000);
    for (let i = 0; i < audio.length; i++) audio[i] = (i * 7) & 0xff;
    const fake = await startFakeOpenAiAudio(audio);
    const gw = await startTestGateway({
      grpc: { enabled: false },
      cache: { enabled: true },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream", models: ["tts-1", "gpt-4o-mini-tts"] } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const sse = async () => {
        const { data, response } = await client.audio.speech.create({ model: "openai/gpt-4o-mini-tts", input: "Hello.", voice: "coral", stream_format: "sse" }).withResponse();
        const events = parseSse(await data.text()).filter((e) => e.data !== "[DONE]").map((e) => JSON.parse(e.data) as { type: string; audio?: string });
        return { events, cache: response.headers.get("x-spillway-cache") };
      };
      const a = await sse();
      const b = await sse();
      assert.equal(a.cache, "miss");
      assert.equal(b.cache, "hit");
      assert.equal(fake.requests.length, 1);
      assert.ok(b.events.filter((e) => e.type === "speech.audio.delta").length > 1, "audio replayed in deltas");
      assert.deepEqual(b.events.filter((e) => e.type === "speech.audio.delta"), a.events.filter((e) => e.type === "speech.audio.delta"));
      assert.deepEqual(Buffer.concat(b.events.filter((e) => e.audio).map((e) => Buffer.from(e.audio!, "base64"))), audio);
      const raw = async () => {
        const { data, response } = await client.audio.speech.create({ model: "openai/tts-1", input: "Hello.", voice: "alloy" }).withResponse();
        return { bytes: Buffer.from(await data.arrayBuffer()), cache: response.headers.get("x-spillway-cache") };
      };
      const r1 = await raw();
      const r2 = await raw();
      assert.equal(r1.cache, "miss");
      assert.equal(r2.cache, "hit");
      assert.deepEqual(r2.bytes, r1.bytes);
      assert.deepEqual(r2.bytes, audio);
      assert.equal(fake.requests.length, 2);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("response cache: byte bound", () => {
  it("the embedded store never holds more than maxBytes, evicting least recently used first", async () => {
    const store = new MemoryCacheStore(10_000);
    for (let i = 0; i < 500; i++) {
      await store.set(`k${i}`, new Uint8Array(100 + ((i * 37) % 900)), 60_000);
      assert.ok(store.bytes <= 10_000, `after ${i + 1} sets: ${store.bytes} bytes`);
      if (i % 10 === 0) await store.get("k0"); // kept warm: survives
    }
    assert.ok(await store.get("k0"), "the recently read entry survived");
    assert.equal(await store.get("k1"), undefined, "cold entries were evicted");
    await store.set("huge", new Uint8Array(10_001), 60_000);
    assert.equal(await store.get("huge"), undefined, "an entry over the bound is not stored");
    assert.ok(store.bytes <= 10_000);
  });

  it("a gateway overfilled with distinct streams stays within cache.maxBytes and still serves the newest", async () => {
    const maxBytes = 4_000;
    const gw = await startTestGateway({ grpc: { enabled: false }, cache: { enabled: true, maxBytes } });
    try {
      const ask = async (i: number) => {
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: `overfill number ${i} with some words to echo back` }], stream: true });
        await res.text();
        return res.headers.get("x-spillway-cache");
      };
      for (let i = 0; i < 60; i++) {
        assert.equal(await ask(i), "miss");
        assert.ok((await metric(gw.origin, "spillway_cache_bytes")) <= maxBytes);
      }
      assert.ok((await metric(gw.origin, "spillway_cache_stores_total")) >= 60);
      assert.ok((await metric(gw.origin, "spillway_cache_bytes")) > 0);
      assert.equal(await ask(59), "hit", "the newest entry is there");
      assert.equal(await ask(0), "miss", "the oldest was evicted");
    } finally {
      await gw.close();
    }
  });
});

describe("response cache: Redis", { skip: redisSkip }, () => {
  it("two gateways on one redis-server share hits", async () => {
    const redis = await startRedis();
    const fake = await startFakeOpenAi(() => ({ events: chatEvents(PARTS, [7, 4]) }));
    const raw = { grpc: { enabled: false }, cache: { enabled: true }, redis: { url: redis.url }, providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "k" } } };
    const a = await startTestGateway(raw);
    const b = await startTestGateway(raw);
    try {
      const run = async (gw: TestGateway) => {
        const { data, response } = await new OpenAI({ baseURL: gw.baseUrl, apiKey: "x", maxRetries: 0 }).chat.completions
          .create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "shared" }], stream: true, stream_options: { include_usage: true } })
          .withResponse();
        const chunks: OpenAI.ChatCompletionChunk[] = [];
        for await (const c of data) chunks.push(c);
        return { chunks, cache: response.headers.get("x-spillway-cache") };
      };
      const first = await run(a);
      assert.equal(first.cache, "miss");
      // The store is written once the stream completes; it may land just after the client's last byte.
      let second = await run(b);
      for (let i = 0; i < 50 && second.cache !== "hit"; i++) {
        await new Promise((r) => setTimeout(r, 20));
        second = await run(b);
      }
      assert.equal(second.cache, "hit", "gateway B served gateway A's entry");
      assert.deepEqual(normalize(second.chunks), normalize(first.chunks));
      assert.equal(second.chunks.at(-1)!.usage!.prompt_tokens_details?.cached_tokens, 7);
    } finally {
      await a.close();
      await b.close();
      await fake.close();
      await redis.stop();
    }
  });
});
