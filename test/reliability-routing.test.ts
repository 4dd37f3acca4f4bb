/**
 * Routing: fallbacks before the first chunk, in-band errors after it,
 * retries that honour Retry-After, the circuit breaker, weighted keys.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { chatChunk, chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { parseSse, postJson } from "./helpers/sse.js";

const user = [{ role: "user" as const, content: "one two three" }];

describe("routing, retries and fallbacks", () => {
  let primary: FakeUpstream;
  let secondary: FakeUpstream;
  before(async () => {
    primary = await startFakeOpenAi();
    secondary = await startFakeOpenAi();
  });
  after(async () => {
    await primary.close();
    await secondary.close();
  });

  async function gateway(routing: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestGateway> {
    return startTestGateway({
      providers: {
        primary: { type: "openai", baseUrl: primary.baseUrl, apiKey: "k1" },
        secondary: { type: "openai", baseUrl: secondary.baseUrl, apiKey: "k2" },
        ...(extra["providers"] as object),
      },
      routing: { baseDelayMs: 1, maxDelayMs: 5, ...routing },
    });
  }

  it("falls back before the first chunk: the client sees one clean stream from the fallback", async () => {
    primary.requests.length = 0;
    primary.script = () => ({ status: 500 });
    secondary.script = () => ({ events: chatEvents(["from", " secondary"]) });
    const gw = await gateway({ maxAttempts: 2, fallbacks: { "primary/m": ["secondary/m", "local/echo"] } });
    try {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user, stream: true });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-spillway-provider"), "secondary");
      assert.equal(res.headers.get("x-spillway-model"), "secondary/m");
      const events = parseSse(await res.text());
      assert.equal(events.at(-1)!.data, "[DONE]");
      const text = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0].delta.content ?? "").join("");
      assert.equal(text, "from secondary");
      assert.equal(primary.requests.length, 2, "the primary was tried twice (one retry) before falling back");
    } finally {
      await gw.close();
    }
  });

  it("honours per-request fallbacks and skips fallbacks that do not exist", async () => {
    primary.script = () => ({ status: 503 });
    const gw = await gateway({ maxAttempts: 1 });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "x", maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: "primary/m",
        messages: user,
        // @ts-expect-error Spillway's extension field
        fallbacks: ["nosuch/model", "local/echo"],
      });
      assert.equal(r.choices[0]!.message.content, "one two three");
      assert.equal(r.model, "echo");
    } finally {
      await gw.close();
    }
  });

  it("never falls back after the first chunk: an in-band error, no mixed text", async () => {
    primary.script = () => ({ events: [chatChunk("partial"), chatChunk(" text"), chatChunk(" never")], destroyAfter: 2, delayMs: 20 });
    secondary.requests.length = 0;
    const gw = await gateway({ maxAttempts: 3, fallbacks: { "primary/m": ["secondary/m"] } });
    try {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user, stream: true });
      const events = parseSse(await res.text());
      const data = events.map((e) => JSON.parse(e.data));
      assert.deepEqual(
        data.slice(0, -1).map((d) => d.choices[0].delta.content),
        ["partial", " text"],
      );
      assert.ok(data.at(-1).error, "the stream ends with an in-band error");
      assert.equal(secondary.requests.length, 0, "no fallback once text reached the client");
    } finally {
      await gw.close();
    }
  });

  it("does not fall back on the client's own errors", async () => {
    primary.requests.length = 0;
    primary.script = () => ({ status: 400, errorBody: { error: { message: "bad temperature", type: "invalid_request_error", param: "temperature", code: null } } });
    const gw = await gateway({ maxAttempts: 3, fallbacks: { "primary/m": ["local/echo"] } });
    try {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as any).error.param, "temperature");
      assert.equal(primary.requests.length, 1, "a 400 is not retried");
    } finally {
      await gw.close();
    }
  });

  it("retries a 429 after its Retry-After", async () => {
    primary.requests.length = 0;
    let n = 0;
    primary.script = () =>
      n++ === 0 ? { status: 429, headers: { "retry-after": "1" }, errorBody: { error: { message: "slow down", type: "requests" } } } : { events: chatEvents(["ok"]) };
    const gw = await gateway({ maxAttempts: 3 });
    try {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as any).choices[0].message.content, "ok");
      const [a, b] = primary.requests;
      assert.ok(a && b, "two upstream requests");
      assert.ok(b.receivedAt - a.receivedAt >= 950, `retried after ${b.receivedAt - a.receivedAt} ms, Retry-After said 1 s`);
    } finally {
      await gw.close();
    }
  });

  it("skips a provider whose circuit is open, and tries it again after the cool-down", async () => {
    primary.requests.length = 0;
    primary.script = () => ({ status: 502 });
    const gw = await gateway({ maxAttempts: 1, breakerThreshold: 2, breakerCooldownMs: 400, fallbacks: { "primary/m": ["local/echo"] } });
    try {
      const call = async (): Promise<string | null> => {
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user });
        assert.equal(res.status, 200);
        return res.headers.get("x-spillway-provider");
      };
      assert.equal(await call(), "local");
      assert.equal(await call(), "local");
      assert.equal(primary.requests.length, 2);
      assert.equal(gw.gateway.engine.isCircuitOpen("primary"), true);
      assert.equal(await call(), "local");
      assert.equal(primary.requests.length, 2, "the open circuit skipped the primary");
      await new Promise((r) => setTimeout(r, 450));
      primary.script = () => ({ events: chatEvents(["back"]) });
      assert.equal(await call(), "primary", "after the cool-down one trial call goes through and succeeds");
      assert.equal(primary.requests.length, 3);
      assert.equal(gw.gateway.engine.isCircuitOpen("primary"), false);
    } finally {
      await gw.close();
    }
  });

  it("spreads requests over weighted keys and moves off a key the upstream refuses", async () => {
    primary.requests.length = 0;
    primary.script = (req) =>
      req.headers.authorization === "Bearer bad-key"
        ? { status: 401, errorBody: { error: { message: "invalid key", type: "invalid_request_error" } } }
        : { events: chatEvents(["ok"]) };
    const gw = await startTestGateway({
      providers: {
        primary: {
          type: "openai",
          baseUrl: primary.baseUrl,
          apiKeys: [
            { key: "key-a", name: "a", weight: 1 },
            { key: "key-b", name: "b", weight: 3 },
          ],
        },
        flaky: { type: "openai", baseUrl: primary.baseUrl, apiKeys: [{ key: "bad-key", name: "bad" }, { key: "good-key", name: "good" }] },
      },
      routing: { maxAttempts: 2, baseDelayMs: 1 },
    });
    try {
      const names: string[] = [];
      for (let i = 0; i < 200; i++) {
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "primary/m", messages: user });
        await res.text();
        names.push(res.headers.get("x-spillway-key") ?? "");
      }
      const b = names.filter((n) => n === "b").length;
      assert.equal(names.filter((n) => n === "a").length + b, 200);
      assert.ok(b > 120 && b < 185, `key b (weight 3 of 4) served ${b} of 200`);
      const auths = new Set(primary.requests.map((r) => r.headers.authorization));
      assert.deepEqual([...auths].sort(), ["Bearer key-a", "Bearer key-b"]);
      for (let i = 0; i < 5; i++) {
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "flaky/m", messages: user });
        assert.equal(res.status, 200, "a refused key is retried with the other key");
        assert.equal(res.headers.get("x-spillway-key"), "good");
        await res.text();
      }
    } finally {
      await gw.close();
    }
  });
});
