/**
 * Gateway-key limits shared through a real Redis: two gateway instances
 * count one key's requests, tokens and open streams together; with Redis
 * down they fail open (or closed, when configured so).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { redisSkip, startRedis, type TestRedis } from "./helpers/redis.js";
import { postJson } from "./helpers/sse.js";

const keys = [
  { key: "sk-shared-rpm-1", name: "rpm3", rpm: 3 },
  { key: "sk-shared-one-2", name: "one-stream", maxConcurrentStreams: 1 },
  { key: "sk-shared-tok-3", name: "tpm", tpm: 10 },
];

describe("limits shared through Redis", { skip: redisSkip }, () => {
  let redis: TestRedis;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    redis = await startRedis();
    const settings = {
      auth: { keys },
      redis: { url: redis.url, keyPrefix: `t${Date.now()}` },
      providers: { slow: { type: "local", tokenDelayMs: 100 } },
    };
    a = await startTestGateway(settings);
    b = await startTestGateway(settings);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  const call = (gw: TestGateway, key: string, body: object = { model: "local/echo", messages: [{ role: "user", content: "a b c d e" }] }): Promise<Response> =>
    postJson(`${gw.baseUrl}/chat/completions`, body, { headers: { authorization: `Bearer ${key}` } });

  it("counts requests per minute across instances", async () => {
    assert.equal((await call(a, "sk-shared-rpm-1")).status, 200);
    assert.equal((await call(a, "sk-shared-rpm-1")).status, 200);
    assert.equal((await call(b, "sk-shared-rpm-1")).status, 200);
    const res = await call(b, "sk-shared-rpm-1");
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.equal((await call(a, "sk-shared-rpm-1")).status, 429);
  });

  it("counts open streams across instances, and frees the slot when the stream ends", async () => {
    const long = { model: "slow/echo", messages: [{ role: "user", content: "one two three four" }], stream: true };
    const first = await call(a, "sk-shared-one-2", long);
    assert.equal(first.status, 200);
    const second = await call(b, "sk-shared-one-2", long);
    assert.equal(second.status, 429);
    await second.text();
    await first.text();
    await new Promise((r) => setTimeout(r, 50));
    const third = await call(b, "sk-shared-one-2");
    assert.equal(third.status, 200);
  });

  it("charges tokens from real usage, seen by the other instance", async () => {
    const first = await call(a, "sk-shared-tok-3");
    assert.equal(first.status, 200);
    assert.equal(((await first.json()) as any).usage.total_tokens, 11);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await call(b, "sk-shared-tok-3")).status, 429);
  });

  it("fails open when Redis is down (the default), or closed when configured", async () => {
    const down = { auth: { keys }, redis: { url: "redis://127.0.0.1:9", commandTimeoutMs: 100 } };
    const open = await startTestGateway(down);
    const closed = await startTestGateway({ ...down, redis: { ...down.redis, failOpen: false } });
    try {
      assert.equal((await call(open, "sk-shared-rpm-1")).status, 200);
      const res = await call(closed, "sk-shared-rpm-1");
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as any).error.code, "limits_unavailable");
    } finally {
      await open.close();
      await closed.close();
    }
  });
});
