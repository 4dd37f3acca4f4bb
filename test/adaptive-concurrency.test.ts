/**
 * Adaptive concurrency (on by default): while the gateway's event loop is
 * past its capacity, new streams are refused at once on every door — HTTP
 * 503 + Retry-After, gRPC UNAVAILABLE, a realtime `error` event — while the
 * streams already open go on; once the loop keeps up again, new streams are
 * served. The saturation is real: this process, which runs the gateway,
 * spins its own event loop. No timing is asserted, only what is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { AdaptiveLimit } from "../src/engine/adaptive-limit.js";
import { SpillwayError } from "../src/engine/errors.js";
import { startTestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { postJson } from "./helpers/sse.js";
import { saturate, until } from "./helpers/saturate.js";



describe("adaptive concurrency, unit", () => {
  it("is unlimited while the loop keeps up; limits below what is open after two slow samples; lifts after", async () => {
    const a = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 2, queueMs: 10, sampleMs: 60_000 });
    try {
      const held = await Promise.all(Array.from({ length: 10 }, () => a.acquire()));
      a.update(10);
      assert.equal(a.limit, Infinity);
      a.update(500);
      assert.equal(a.limit, Infinity, "one slow sample is a burst, not overload");
      a.update(500);
      assert.equal(a.limit, 9, "90% of the 10 open");
      await assert.rejects(a.acquire(), (e: unknown) => e instanceof SpillwayError && e.httpStatus === 503 && e.retryAfterMs === 1000);
      // A release wakes a waiter: the queue hands the slot on.
      held.pop()!();
      held.pop()!();
      const waited = await a.acquire();
      assert.equal(a.inflight, 9);
      for (let i = 0; i < 20 && a.limit !== Infinity; i++) a.update(10);
      assert.equal(a.limit, Infinity, "lifted once the loop has room again");
      waited();
      for (const r of held) r();
      assert.equal(a.inflight, 0);
    } finally {
      a.stop();
    }
  });
});

describe("adaptive concurrency, maxLimit (unit)", () => {
  it("starts at maxLimit, grows no higher than it, cuts no lower than minLimit; equal, the limit is fixed", async () => {
    const a = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 2, maxLimit: 6, queueMs: 0, sampleMs: 60_000 });
    const fixed = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 3, maxLimit: 3, queueMs: 0, sampleMs: 60_000 });
    try {
      assert.equal(a.limit, 6, "starts at the ceiling, not unlimited");
      const held = await Promise.all(Array.from({ length: 6 }, () => a.acquire()));
      assert.throws(() => a.enter(), (e: unknown) => e instanceof SpillwayError && e.httpStatus === 503, "the seventh is refused");
      a.update(500, 1);
      a.update(500, 1);
      assert.equal(a.limit, 5, "cut under load: 90% of the 6 open");
      for (let i = 0; i < 50; i++) a.update(0, 0.1);
      assert.equal(a.limit, 6, "grown back to the ceiling, never past it");
      for (const r of held) r();
      for (let i = 0; i < 5; i++) {
        fixed.update(i % 2 ? 0 : 500, 1);
        assert.equal(fixed.limit, 3);
      }
      const three = await Promise.all(Array.from({ length: 3 }, () => fixed.acquire()));
      for (let i = 0; i < 3; i++) fixed.update(500, 1);
      assert.equal(fixed.limit, 3, "minLimit = maxLimit: fixed under load too");
      for (const r of three) r();
    } finally {
      a.stop();
      fixed.stop();
    }
  });

  it("config: maxLimit below minLimit is refused, naming the field", async () => {
    const { configSchema } = await import("../src/config/schema.js");
    const r = configSchema.safeParse({ limits: { adaptiveConcurrency: { minLimit: 8, maxLimit: 4 } } });
    assert.equal(r.success, false);
    assert.ok(r.error.issues.some((i) => i.path.join(".") === "limits.adaptiveConcurrency.maxLimit"), JSON.stringify(r.error.issues));
  });
});

describe("adaptive concurrency, the faster limit (unit)", () => {
  it("cuts to what the loop carried while it kept up, not while fewer than minLimit are open nor when the late loop was idle; holds while the loop is full", async () => {
    const a = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 4, queueMs: 0, sampleMs: 60_000 });
    const held: Array<() => void> = [];
    const take = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) held.push(await a.acquire());
    };
    try {
      await take(3);
      a.update(50, 1);
      a.update(50, 1);
      assert.equal(a.limit, Infinity, "3 open, under minLimit 4: they cannot be the cause");
      await take(7);
      a.update(2, 0.8);
      assert.equal(a.carried, 10, "10 open in a sample that kept up");
      await take(30);
      a.update(50, 0.2);
      a.update(50, 0.2);
      assert.equal(a.limit, Infinity, "a late loop that was mostly idle was descheduled, not overloaded");
      a.update(50, 1);
      a.update(50, 1);
      assert.equal(a.limit, 9, "the first cut after the surge goes to what was carried (~10, decayed), not to 90% of the 40 open");
      a.update(50, 1);
      assert.equal(a.limit, 9, "no deeper cut while more are open than the limit: nothing new is let in already");
      while (held.length > 8) held.pop()!();
      a.update(50, 1);
      a.update(50, 1);
      assert.equal(a.limit, 7, "once the limit binds, 10% a sample while still over");
      a.update(2, 0.99);
      assert.equal(a.limit, 7, "a loop that keeps up but is full holds the limit");
      a.update(2, 0.5);
      assert.ok(a.limit > 7, "a loop with room grows it");
      assert.throws(() => {
        while (a.inflight < a.limit) held.push(a.enter() as () => void);
        a.enter();
      }, (e: unknown) => e instanceof SpillwayError && e.httpStatus === 503);
    } finally {
      for (const r of held) r();
      a.stop();
    }
  });
});

describe("adaptive concurrency on every door", () => {
  it("refuses new streams while the loop is saturated (HTTP 503, gRPC UNAVAILABLE, realtime error), open streams go on, then serves again", async () => {
    const gw = await startTestGateway({
      providers: { local: { type: "local", tokenDelayMs: 200 } },
      limits: { adaptiveConcurrency: { targetDelayMs: 50, minLimit: 2, queueMs: 20 } },
    });
    const grpc = spillwayClient(gw.grpcAddress!);
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    try {
      // Four slow streams stay open through the saturation.
      const words = Array.from({ length: 25 }, (_, i) => `w${i}`).join(" ");
      const open = Array.from({ length: 4 }, () =>
        postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true }).then((r) => r.text()),
      );
      await sleep(300);
      const stop = saturate();
      try {
        await until(async () => {
          const r = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
          await r.arrayBuffer();
          return r.status === 503;
        }, "an HTTP refusal");
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
        assert.equal(res.status, 503);
        assert.equal(res.headers.get("retry-after"), "1");
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, "server_overloaded");
        const g = await readAll(grpc.generate(generateRequest("local/echo", "x")));
        assert.equal(g.error?.code, status.UNAVAILABLE);
        const from = rt.all("error").length;
        rt.send({ type: "response.create", response: { modalities: ["text"], instructions: "say x" } });
        const err = await rt.next("error", () => true, 10_000, from);
        assert.match(JSON.stringify(err), /server_overloaded/);
      } finally {
        stop();
      }
      // The streams open before the saturation finished whole.
      for (const text of await Promise.all(open)) assert.match(text, /w24[\s\S]*\[DONE\]/);
      await until(async () => {
        const r = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "back" }] });
        await r.arrayBuffer();
        return r.status === 200;
      }, "served again over HTTP");
      const ok = await readAll(grpc.generate(generateRequest("local/echo", "back")));
      assert.equal(ok.error, undefined);
    } finally {
      await rt.close();
      grpc.close();
      await gw.close();
    }
  });
});
