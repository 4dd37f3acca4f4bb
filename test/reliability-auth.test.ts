/** Gateway keys and limits: 401, 403, 429 with Retry-After, 503 at capacity. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { postJson } from "./helpers/sse.js";

const body = { model: "local/echo", messages: [{ role: "user", content: "a b c d e" }] };

describe("gateway keys and limits", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      auth: {
        keys: [
          { key: "sk-full-access-1", name: "full" },
          { key: "sk-only-openai-2", name: "openai-only", models: ["openai/*"] },
          { key: "sk-two-per-min-3", name: "rpm2", rpm: 2 },
          { key: "sk-one-stream-4", name: "one-stream", maxConcurrentStreams: 1 },
          { key: "sk-few-tokens-5", name: "tpm", tpm: 10 },
        ],
      },
      providers: { local: { type: "local", tokenDelayMs: 0 }, slow: { type: "local", tokenDelayMs: 100 } },
    });
  });
  after(() => gw.close());

  async function call(key: string | undefined, b: object = body): Promise<Response> {
    return postJson(`${gw.baseUrl}/chat/completions`, b, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  }

  async function expectError(res: Response, status: number, code: string): Promise<any> {
    assert.equal(res.status, status);
    const j = await res.json();
    assertSchema("ErrorResponse", j);
    assert.equal((j as any).error.code, code);
    return j;
  }

  it("401 without a key or with a wrong one; 200 with a good one, through the openai SDK", async () => {
    await expectError(await call(undefined), 401, "missing_api_key");
    await expectError(await call("sk-full-access-X"), 401, "invalid_api_key");
    const good = new OpenAI({ baseURL: gw.baseUrl, apiKey: "sk-full-access-1", maxRetries: 0 });
    const r = await good.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "hi" }] });
    assert.equal(r.choices[0]!.message.content, "hi");
    const bad = new OpenAI({ baseURL: gw.baseUrl, apiKey: "nope-nope-nope", maxRetries: 0 });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
  });

  it("health checks need no key", async () => {
    assert.equal((await fetch(`${gw.origin}/healthz`)).status, 200);
    assert.equal((await fetch(`${gw.origin}/readyz`)).status, 200);
  });

  it("403 for a model the key may not use, naming it", async () => {
    const j = await expectError(await call("sk-only-openai-2"), 403, "model_not_allowed");
    assert.match(j.error.message, /local\/echo/);
    // Per-request fallbacks are checked too.
    await expectError(await call("sk-only-openai-2", { ...body, model: "openai/x", fallbacks: ["local/echo"] }), 403, "model_not_allowed");
  });

  it("429 with Retry-After past the requests-per-minute limit", async () => {
    assert.equal((await call("sk-two-per-min-3")).status, 200);
    assert.equal((await call("sk-two-per-min-3")).status, 200);
    const res = await call("sk-two-per-min-3");
    await expectError(res, 429, "rate_limit_exceeded");
    const after = Number(res.headers.get("retry-after"));
    assert.ok(after >= 1 && after <= 60, `Retry-After ${after}`);
  });

  it("429 past the tokens-per-minute limit, counted from real usage", async () => {
    const first = await call("sk-few-tokens-5"); // 6 prompt + 5 output tokens > 10
    assert.equal(first.status, 200);
    assert.equal(((await first.json()) as any).usage.total_tokens, 11);
    await expectError(await call("sk-few-tokens-5"), 429, "rate_limit_exceeded");
  });

  it("429 past the key's concurrent-stream cap, and a slot frees when the stream ends", async () => {
    const long = { model: "slow/echo", messages: [{ role: "user", content: "one two three four five" }], stream: true };
    const first = await call("sk-one-stream-4", long);
    assert.equal(first.status, 200);
    await expectError(await call("sk-one-stream-4", long), 429, "rate_limit_exceeded");
    await first.text();
    await new Promise((r) => setTimeout(r, 20));
    const again = await call("sk-one-stream-4");
    assert.equal(again.status, 200);
  });
});

describe("global stream cap", () => {
  it("503 with Retry-After when the gateway is at its concurrent-stream limit", async () => {
    const gw = await startTestGateway({ limits: { maxConcurrentStreams: 1 }, providers: { slow: { type: "local", tokenDelayMs: 100 } } });
    try {
      const long = { model: "slow/echo", messages: [{ role: "user", content: "one two three" }], stream: true };
      const first = await postJson(`${gw.baseUrl}/chat/completions`, long);
      const second = await postJson(`${gw.baseUrl}/chat/completions`, long);
      assert.equal(second.status, 503);
      assert.equal(second.headers.get("retry-after"), "1");
      assert.equal(((await second.json()) as any).error.code, "server_overloaded");
      await first.text();
    } finally {
      await gw.close();
    }
  });
});
