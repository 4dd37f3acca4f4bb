/**
 * Refusals past capacity are cheap and early on every door (issue 16): one
 * check (`Admission.enter`) that each door calls before its work — HTTP
 * right after the route match, before the body is read or parsed; gRPC
 * first in the call, before the request is validated; realtime at the
 * upgrade (HTTP 503 + Retry-After, no session) and at `response.create`
 * (an `error` event, then the socket closes with 1013). A stream admitted
 * early keeps its slot for its life, counted once. The saturation is real:
 * this process, which runs the gateway, spins its own event loop; nothing
 * about timing is asserted, only what is refused and that it stops after.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import pino from "pino";
import { AdaptiveLimit, OVERLOADED } from "../src/engine/adaptive-limit.js";
import { Admission } from "../src/engine/admission.js";
import { sampleRefusal } from "../src/observability/refusal-log.js";
import { startTestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { postJson } from "./helpers/sse.js";
import { saturate, until } from "./helpers/saturate.js";



/**
 * Sends the head of a POST with `Content-Length` 100,000 and only the first
 * bytes of its body, never the rest: resolves with the response head the
 * gateway sends anyway.
 */
function partialPost(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"local/echo","messages":[`);
    });
    let got = "";
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.includes("\r\n\r\n")) {
        s.destroy();
        resolve(got.slice(0, got.indexOf("\r\n\r\n")));
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(got));
  });
}

/** A WebSocket upgrade request: the status and Retry-After it was answered with (101 when it opened). */
function upgrade(port: number): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/v1/realtime?model=local/realtime",
      headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, retryAfter: undefined });
    });
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("admission tickets (unit)", () => {
  it("a stream admitted with a ticket takes its slot over: counted once, released once", async () => {
    const limit = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 0, sampleMs: 60_000 });
    const admission = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
    try {
      const t = admission.enter();
      assert.equal(t.holding, true);
      assert.equal(limit.inflight, 1, "the ticket holds a slot");
      const lease = await admission.admit(undefined, ["local/echo"], t);
      assert.equal(limit.inflight, 1, "the stream took the ticket's slot: not a second one");
      t.release();
      assert.equal(limit.inflight, 1, "the door's release after the stream took the slot is a no-op");
      lease.release(0);
      assert.equal(limit.inflight, 0);
      const unused = admission.enter();
      unused.release();
      unused.release();
      assert.equal(limit.inflight, 0, "a ticket no stream took frees its slot, once");
    } finally {
      limit.stop();
    }
  });

  it("past the limit with no queue, enter throws the one shared, stackless refusal at once; wouldAdmit says so", async () => {
    const limit = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 0, sampleMs: 60_000 });
    const admission = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
    try {
      const held = admission.enter();
      limit.update(500);
      limit.update(500);
      assert.equal(limit.limit, 1);
      assert.equal(admission.wouldAdmit(), false);
      assert.throws(() => admission.enter(), (e: unknown) => e === OVERLOADED);
      assert.throws(() => admission.enter(), (e: unknown) => e === OVERLOADED, "the same object each time: nothing allocated");
      await assert.rejects(admission.admit(undefined, ["local/echo"]), (e: unknown) => e === OVERLOADED);
      assert.doesNotMatch(OVERLOADED.stack ?? "", /\n\s+at /, "no stack captured");
      assert.equal(OVERLOADED.httpStatus, 503);
      assert.equal(OVERLOADED.retryAfterMs, 1000);
      held.release();
      assert.equal(admission.wouldAdmit(), true);
    } finally {
      limit.stop();
    }
  });

  it("with a queue, a request that would wait gets a spent ticket and waits in admit", async () => {
    const limit = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 60_000, sampleMs: 60_000 });
    const admission = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
    try {
      const held = admission.enter();
      limit.update(500);
      limit.update(500);
      const t = admission.enter();
      assert.equal(t.holding, false, "nothing held while it would wait");
      const waiting = admission.admit(undefined, ["local/echo"], t);
      held.release();
      const lease = await waiting;
      assert.equal(limit.inflight, 1, "woken with the freed slot");
      lease.release(0);
      assert.equal(limit.inflight, 0);
    } finally {
      limit.stop();
    }
  });

  it("the stream cap refuses at enter too (the same policy for every door)", () => {
    const admission = new Admission([], { maxConcurrentStreams: 0 });
    assert.throws(() => admission.enter(), (e: unknown) => e instanceof Error && /limit of concurrent streams/.test(e.message));
    assert.equal(admission.wouldAdmit(), false);
  });

  it("refusals get one request line a second, with how many went unlogged", () => {
    const logger = pino({ enabled: false });
    assert.equal(sampleRefusal(logger, 0), 0);
    assert.equal(sampleRefusal(logger, 10), undefined);
    assert.equal(sampleRefusal(logger, 999), undefined);
    assert.equal(sampleRefusal(logger, 1000), 2);
    assert.equal(sampleRefusal(logger, 1001), undefined);
  });
});

describe("early refusals on every door under saturation", () => {
  it("refuses before the work (a body never sent in full, an invalid body, an invalid gRPC request, the realtime upgrade, response.create with error + close), then serves again", async () => {
    const gw = await startTestGateway({
      providers: { local: { type: "local", tokenDelayMs: 200 } },
      limits: { adaptiveConcurrency: { targetDelayMs: 50, minLimit: 2, queueMs: 0 } },
    });
    const port = Number(new URL(gw.origin).port);
    const grpc = spillwayClient(gw.grpcAddress!);
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    try {
      await rt.next("session.created");
      // Between responses: the slot reserved at the upgrade for a first response goes back.
      rt.send({ type: "input_audio_buffer.clear" });
      await rt.next("input_audio_buffer.cleared");
      // Four slow streams stay open through the saturation (the limit drops below them).
      const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
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
        // HTTP: a body that is never sent in full still gets its 503, with Retry-After and a clean close.
        const head = await partialPost(port, "/v1/chat/completions");
        assert.match(head, /^HTTP\/1\.1 503/, head);
        assert.match(head, /\r\nretry-after: 1\r\n/i, head);
        assert.match(head, /\r\nconnection: close\r\n/i, head);
        // A body that would fail parsing (400) is refused first: it is never parsed.
        const bad = await fetch(`${gw.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
        assert.equal(bad.status, 503, await bad.clone().text());
        assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "server_overloaded");
        // gRPC: a request that would fail validation (no model: INVALID_ARGUMENT) is refused first.
        const g = await readAll(grpc.generate(generateRequest("", "x")));
        assert.equal(g.error?.code, status.UNAVAILABLE, g.error?.details);
        // Realtime: the upgrade is refused with 503 + Retry-After; no session is set up.
        const up = await upgrade(port);
        assert.equal(up.status, 503);
        assert.equal(up.retryAfter, "1");
        // Realtime: response.create on a session open before gets an error event, then the socket closes.
        const from = rt.all("error").length;
        rt.send({ type: "response.create", response: { output_modalities: ["text"], instructions: "say x" } });
        const err = await rt.next("error", () => true, 10_000, from);
        assert.match(JSON.stringify(err), /server_overloaded/);
        const closed = await rt.closed;
        assert.equal(closed.code, 1013, "closed: try again later");
        assert.equal(rt.all("response.created").length, 0, "no response was set up");
      } finally {
        stop();
      }
      // The streams open before the saturation finished whole (their slots were theirs for their life).
      for (const text of await Promise.all(open)) assert.match(text, /w39[\s\S]*\[DONE\]/);
      // And refusals stop: every door serves again.
      await until(async () => {
        const r = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "back" }] });
        await r.arrayBuffer();
        return r.status === 200;
      }, "served again over HTTP");
      const ok = await readAll(grpc.generate(generateRequest("local/echo", "back")));
      assert.equal(ok.error, undefined);
      assert.equal((await upgrade(port)).status, 101, "the upgrade is accepted again");
      const again = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
      try {
        await again.next("session.created");
        again.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "back" }] } });
        again.send({ type: "response.create", response: { output_modalities: ["text"] } });
        const done = await again.next("response.done", () => true, 30_000);
        assert.equal((done["response"] as { status: string }).status, "completed");
      } finally {
        await again.close();
      }
      assert.equal(gw.gateway.engine.admission.openStreams, 0, "every slot released");
    } finally {
      await rt.close();
      grpc.close();
      await gw.close();
    }
  });
});
