/**
 * The realtime door's contract at the upgrade and at shutdown: while the
 * gateway drains, a new `/v1/realtime` upgrade is refused with HTTP 503 (and
 * Retry-After) while open sessions finish their response, then get an
 * `error` event and close 1001; a profile (or a model it uses) outside the
 * gateway key's model list is refused with 403 on the handshake, before any
 * `session.created`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

interface Refusal {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: any;
}

/** Tries an upgrade; resolves with the HTTP answer when it is refused, rejects when it is accepted. */
function refusal(url: string, headers: Record<string, string> = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => {
      ws.terminate();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("unexpected-response", (_req, res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined });
      });
    });
    ws.once("error", (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

const words = (n: number): string => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("realtime door: drain and close", () => {
  it("while the gateway drains: a new upgrade gets 503 + Retry-After; the open session finishes its response, then gets an error event and close 1001", async () => {
    const tg = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 40 } } });
    const a = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await a.next("session.created");
    a.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: words(25) }] } });
    a.send({ type: "response.create", response: { output_modalities: ["text"] } });
    await a.next("response.output_text.delta");
    assert.equal(tg.gateway.realtime.activeCount, 1);
    const closing = tg.gateway.close(10_000);
    assert.equal(tg.gateway.realtime.draining, true);
    const refused = await refusal(realtimeUrl(tg.origin));
    assert.equal(refused.status, 503);
    assert.equal(refused.headers["retry-after"], "1");
    assert.equal(refused.body.error.code, "server_shutting_down");
    const closed = await a.closed;
    await closing;
    const done = a.all("response.done")[0];
    assert.equal(done?.response.status, "completed", "the response in flight finished within the grace");
    const types = a.types();
    const err = a.all("error").at(-1)!;
    assert.equal(err.error.type, "server_error");
    assert.equal(err.error.code, "server_shutting_down");
    assert.ok(types.lastIndexOf("error") > types.indexOf("response.done"), "the error event comes after the response");
    assert.equal(types.at(-1), "error", "the error event is the last event before the close frame");
    assert.equal(closed.code, 1001);
    assert.deepEqual(a.invalid, []);
  });

  it("door contract: drain() refuses upgrades with 503 and keeps open sessions; close(grace) ends a busy session at the end of the grace", async () => {
    const tg = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 200 } } });
    try {
      const door = tg.gateway.realtime;
      const a = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
      await a.next("session.created");
      door.drain();
      assert.equal((await refusal(realtimeUrl(tg.origin))).status, 503);
      // The open session still works.
      a.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: words(200) }] } });
      a.send({ type: "response.create", response: { output_modalities: ["text"] } });
      await a.next("response.output_text.delta");
      assert.equal(door.activeCount, 1);
      await door.close(300);
      const closed = await a.closed;
      assert.equal(closed.code, 1001);
      assert.equal(a.all("error").at(-1)?.error.code, "server_shutting_down");
      assert.equal(a.all("response.done").length, 0, "the 40 s response was not let run past the grace");
      const until = Date.now() + 5000;
      while (door.activeCount > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.equal(door.activeCount, 0);
    } finally {
      await tg.close();
    }
  });
});

describe("realtime door: the key's model list at the upgrade", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway({
      auth: {
        keys: [
          { key: "sk-echo-only", name: "echo-only", models: ["local/echo"] },
          { key: "sk-local-all", name: "local", models: ["local/*"] },
          { key: "sk-no-tts", name: "no-tts", models: ["local/realtime", "local/stt", "local/echo"] },
          { key: "sk-stt-only", name: "stt", models: ["local/realtime", "local/stt"] },
          { key: "sk-acme-key", name: "acme", models: ["acme/*", "local/*"] },
        ],
      },
      realtime: { profiles: { "acme/voice": { stt: "local/stt", text: "other/model", tts: "local/tts" } } },
    });
  });
  after(async () => {
    await tg.close();
  });
  const bearer = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });

  it("a profile outside the key's list: 403 on the handshake, naming it", async () => {
    const r = await refusal(realtimeUrl(tg.origin), bearer("sk-echo-only"));
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, "model_not_allowed");
    assert.match(r.body.error.message, /local\/realtime/);
  });

  it("a model the profile uses outside the key's list: 403 naming that model", async () => {
    const r = await refusal(realtimeUrl(tg.origin), bearer("sk-no-tts"));
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /local\/tts/);
    const acme = await refusal(realtimeUrl(tg.origin, "acme/voice"), bearer("sk-acme-key"));
    assert.equal(acme.status, 403);
    assert.match(acme.body.error.message, /other\/model/);
  });

  it("no key or a wrong key: 401 as before", async () => {
    assert.equal((await refusal(realtimeUrl(tg.origin))).status, 401);
    assert.equal((await refusal(realtimeUrl(tg.origin), bearer("sk-wrong-key"))).status, 401);
  });

  it("a key that allows the profile and its models: session.created", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin), { headers: bearer("sk-local-all") });
    await c.next("session.created");
    await c.close();
    // A transcription session needs only the speech-to-text model.
    const t = await RealtimeTestClient.connect(`${realtimeUrl(tg.origin)}&intent=transcription`, { headers: bearer("sk-stt-only") });
    await t.next("session.created");
    await t.close();
  });

  it("session.update to a profile outside the key's list is an error event; the session keeps its profile", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin), { headers: bearer("sk-acme-key") });
    await c.next("session.created");
    c.send({ type: "session.update", event_id: "ev1", session: { type: "realtime", model: "acme/voice" } });
    const err = await c.next("error");
    assert.equal(err.error.code, "model_not_allowed");
    assert.equal(err.error.event_id, "ev1");
    assert.equal(c.all("session.updated").length, 0);
    await c.close();
  });
});
