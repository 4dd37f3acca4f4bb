/**
 * Upstream Realtime models: a profile `{ upstream: openai/gpt-realtime }`
 * makes the door relay the session to the openai provider's Realtime API
 * (a fake upstream speaking GA events), with the gateway's key, limits and
 * metrics; upstream faults (refused, slow, closing mid-stream, error events)
 * reach the client as an `error` event and a close it can act on; a client
 * that goes away closes the upstream. Driven with `ws` and with the official
 * openai SDK's `OpenAIRealtimeWS`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { Writable } from "node:stream";
import pino from "pino";
import WebSocket from "ws";
import { realtimeUrlOf } from "../src/doors/ws/upstream/upstream-target.js";
import { DELTA_BYTES, startFakeOpenAiRealtime, type FakeOpenAiRealtime } from "./helpers/fake-openai-realtime.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { makeSelfSignedCert } from "./helpers/realtime-tls.js";

const KEY = "sk-gateway-voice";
const MODEL = "openai/gpt-realtime";
const auth = { Authorization: `Bearer ${KEY}` };

let fake: FakeOpenAiRealtime;
let tg: TestGateway;

function gatewayConfig(baseUrl: string, extra: Record<string, any> = {}): Record<string, any> {
  return {
    providers: { openai: { type: "openai", baseUrl, apiKey: "sk-upstream-secret" } },
    auth: {
      keys: [
        { key: KEY, name: "voice", models: [MODEL] },
        { key: "sk-gateway-local", name: "local-only", models: ["local/*"] },
        { key: "sk-gateway-slow", name: "one-stream", models: [MODEL], rpm: 1 },
      ],
    },
    realtime: { profiles: { [MODEL]: { upstream: MODEL } }, ...extra },
  };
}

before(async () => {
  fake = await startFakeOpenAiRealtime();
  tg = await startTestGateway(gatewayConfig(fake.baseUrl));
});
after(async () => {
  await tg.close();
  await fake.close();
});

async function open(headers: Record<string, string> = auth): Promise<RealtimeTestClient> {
  return RealtimeTestClient.connect(realtimeUrl(tg.origin, MODEL), { headers });
}

async function metrics(): Promise<string> {
  return (await fetch(`${tg.origin}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("upstream realtime profile over ws", () => {
  it("derives the upstream URL from the provider's baseUrl (https → wss, http → ws)", () => {
    assert.equal(realtimeUrlOf("https://api.openai.com/v1", "gpt-realtime"), "wss://api.openai.com/v1/realtime?model=gpt-realtime");
    assert.equal(realtimeUrlOf("http://127.0.0.1:9/v1/", "gpt-realtime"), "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime");
  });

  it("relays events both ways with the upstream key; binary audio becomes append; usage, audio and session seconds reach the metrics", async () => {
    fake.behaviour = { deltas: 3, usage: { input: 11, output: 7 } };
    const before = await metrics();
    const nextConn = fake.nextConnection();
    const c = await open();
    const conn = await nextConn;
    const created = await c.next("session.created");
    assert.equal(created.session.model, "gpt-realtime");
    assert.equal(new URL(conn.url, "http://x").pathname, "/v1/realtime");
    assert.equal(new URL(conn.url, "http://x").searchParams.get("model"), "gpt-realtime");
    assert.equal(conn.headers["authorization"], "Bearer sk-upstream-secret", "the upstream gets the provider's key, never the gateway key");
    c.send({ type: "session.update", session: { type: "realtime", instructions: "Be brief." } });
    const updated = await c.next("session.updated");
    assert.equal(updated.session.instructions, "Be brief.");
    c.ws.send(Buffer.alloc(4800)); // 100 ms of pcm16 as a raw binary frame
    c.send({ type: "input_audio_buffer.append", audio: Buffer.alloc(9600).toString("base64") });
    c.send({ type: "input_audio_buffer.commit" });
    await c.next("input_audio_buffer.committed");
    c.send({ type: "response.create" });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.equal(done.response.usage.total_tokens, 18);
    const audio = c.all("response.output_audio.delta").map((e) => Buffer.from(e.delta, "base64"));
    assert.equal(audio.length, 3);
    assert.ok(audio.every((a) => a.length === DELTA_BYTES));
    assert.equal(c.all("response.output_audio_transcript.delta").map((e) => e.delta).join(""), "word0 word1 word2 ");
    const appends = conn.events.filter((e) => e["type"] === "input_audio_buffer.append");
    assert.equal(appends.length, 2);
    assert.equal(Buffer.from(appends[0]!["audio"], "base64").length, 4800);
    assert.deepEqual(conn.events.map((e) => e["type"]), ["session.update", "input_audio_buffer.append", "input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]);
    assert.deepEqual(c.invalid, []);
    await c.close();
    assert.equal((await conn.closed).code, 1000);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => metricValue(after, name, labels) - metricValue(before, name, labels);
    assert.equal(delta("spillway_tokens_total", { direction: "in", provider: "openai" }), 11);
    assert.equal(delta("spillway_tokens_total", { direction: "out", provider: "openai" }), 7);
    assert.ok(Math.abs(delta("spillway_audio_seconds_total", { direction: "out", provider: "openai" }) - 0.3) < 1e-6);
    assert.ok(Math.abs(delta("spillway_audio_seconds_total", { direction: "in", provider: "openai" }) - 0.3) < 1e-6);
    assert.equal(delta("spillway_requests_total", { door: "ws", model: MODEL, provider: "openai", outcome: "ok" }), 1);
    assert.ok(delta("spillway_realtime_session_seconds_total", { model: MODEL, kind: "upstream" }) > 0);
  });

  it("client mistakes stay at the gateway: bad JSON and another session.model are error events, not sent upstream", async () => {
    fake.behaviour = {};
    const nextConn = fake.nextConnection();
    const c = await open();
    const conn = await nextConn;
    await c.next("session.created");
    c.ws.send("{not json");
    const bad = await c.next("error");
    assert.equal(bad.error.code, "invalid_json");
    c.send({ type: "session.update", event_id: "ev_model", session: { type: "realtime", model: "gpt-4o-realtime-preview" } });
    const wrong = await c.next("error", (e) => e.error.event_id === "ev_model");
    assert.equal(wrong.error.param, "session.model");
    c.send({ type: "session.update", session: { type: "realtime", model: MODEL } });
    await c.next("session.updated");
    assert.deepEqual(conn.events.map((e) => [e["type"], e["session"]?.model]), [["session.update", "gpt-realtime"]]);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.close();
  });

  it("the gateway key's model list and limits apply: 403 at the upgrade; a response over the key's rpm is cancelled upstream with an error event", async () => {
    await assert.rejects(open({ Authorization: "Bearer sk-gateway-local" }), /403/);
    await assert.rejects(open({}), /401/);
    fake.behaviour = { deltas: 20, deltaDelayMs: 20 };
    const nextConn = fake.nextConnection();
    const c = await open({ Authorization: "Bearer sk-gateway-slow" });
    const conn = await nextConn;
    await c.next("session.created");
    c.send({ type: "response.create" });
    await c.next("response.done");
    c.send({ type: "response.create" });
    const refused = await c.next("error");
    assert.equal(refused.error.code, "rate_limit_exceeded");
    const cancelled = await c.next("response.done", (e) => e.response.status === "cancelled");
    assert.ok(cancelled);
    assert.ok(conn.events.some((e) => e["type"] === "response.cancel"));
    await c.close();
  });

  it("a client that goes away mid-response closes the upstream at once", async () => {
    fake.behaviour = { deltas: 200, deltaDelayMs: 20 };
    const nextConn = fake.nextConnection();
    const c = await open();
    const conn = await nextConn;
    await c.next("session.created");
    c.send({ type: "response.create" });
    await c.next("response.output_audio.delta");
    c.ws.terminate();
    const closed = await conn.closed;
    assert.equal(closed.code, 1000);
    assert.ok(conn.events.length === 1);
    const until = Date.now() + 5000;
    while (tg.gateway.engine.admission.openStreams > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(tg.gateway.engine.admission.openStreams, 0, "the response's lease was released");
  });
});

describe("upstream faults", () => {
  it("the upstream closes mid-stream: an error event (upstream_closed), then close 1011", async () => {
    fake.behaviour = { deltas: 5, closeMidStream: { afterDeltas: 2 } };
    const c = await open();
    await c.next("session.created");
    c.send({ type: "response.create" });
    const closed = await c.closed;
    assert.equal(closed.code, 1011);
    const err = c.all("error").at(-1)!;
    assert.equal(err.error.type, "server_error");
    assert.equal(err.error.code, "upstream_closed");
    assert.equal(c.types().at(-1), "error");
    assert.equal(c.all("response.output_audio.delta").length, 2);
  });

  it("an upstream error event is relayed; the session goes on", async () => {
    fake.behaviour = { errorOnResponse: { code: "invalid_value", message: "fake says no" } };
    const c = await open();
    await c.next("session.created");
    c.send({ type: "response.create" });
    const err = await c.next("error");
    assert.equal(err.error.message, "fake says no");
    fake.behaviour = {};
    c.send({ type: "response.create" });
    assert.equal((await c.next("response.done")).response.status, "completed");
    await c.close();
  });

  it("the upstream refuses the upgrade (401): an error event naming the status, then close 1011", async () => {
    fake.behaviour = { rejectStatus: 401 };
    const c = await open();
    const closed = await c.closed;
    assert.equal(closed.code, 1011);
    const err = c.all("error")[0]!;
    assert.equal(err.error.code, "upstream_refused");
    assert.match(err.error.message, /HTTP 401/);
    assert.match(err.error.message, /Incorrect API key/);
    fake.behaviour = { rejectStatus: 503 };
    const busy = await open();
    assert.equal((await busy.closed).code, 1013, "503 upstream: try again later");
  });

  it("a slow first byte: events sent meanwhile are delivered in order once the upstream opens", async () => {
    fake.behaviour = { slowFirstByteMs: 300 };
    const nextConn = fake.nextConnection();
    const c = await open();
    c.send({ type: "session.update", session: { type: "realtime", instructions: "early" } });
    c.send({ type: "response.create" });
    const conn = await nextConn;
    await c.next("response.done");
    assert.deepEqual(conn.events.map((e) => e["type"]), ["session.update", "response.create"]);
    assert.deepEqual(c.types().slice(0, 3), ["session.created", "session.updated", "response.created"]);
    await c.close();
  });

  it("an upstream slower than realtime.upstreamConnectTimeoutMs: error event upstream_timeout, close 1011; an unreachable one: upstream_unavailable", async () => {
    const slow = await startFakeOpenAiRealtime({ slowFirstByteMs: 3000 });
    const g = await startTestGateway(gatewayConfig(slow.baseUrl, { upstreamConnectTimeoutMs: 200 }));
    const dead = await startTestGateway(gatewayConfig("http://127.0.0.1:1/v1"));
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, MODEL), { headers: auth });
      assert.equal((await c.closed).code, 1011);
      assert.equal(c.all("error")[0]?.error.code, "upstream_timeout");
      const d = await RealtimeTestClient.connect(realtimeUrl(dead.origin, MODEL), { headers: auth });
      assert.equal((await d.closed).code, 1011);
      assert.equal(d.all("error")[0]?.error.code, "upstream_unavailable");
    } finally {
      await Promise.all([g.close(), dead.close()]);
      await slow.close();
    }
  });

  it("gateway shutdown: the relayed session gets an error event and close 1001, and the upstream is closed", async () => {
    const own = await startFakeOpenAiRealtime();
    const g = await startTestGateway(gatewayConfig(own.baseUrl));
    const nextConn = own.nextConnection();
    const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, MODEL), { headers: auth });
    const conn = await nextConn;
    await c.next("session.created");
    await g.close();
    assert.equal((await c.closed).code, 1001);
    assert.equal(c.all("error").at(-1)?.error.code, "server_shutting_down");
    await conn.closed;
    await own.close();
  });
});

describe("upstream session limits, logs and beta clients", () => {
  it("idle timeout, one log line per response and per session, and the beta header passed on", async () => {
    const own = await startFakeOpenAiRealtime();
    const lines: any[] = [];
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    });
    const g = await startTestGateway(gatewayConfig(own.baseUrl, { idleTimeoutSeconds: 1 }), { logger: pino({ level: "info" }, dest) });
    try {
      const nextConn = own.nextConnection();
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, MODEL), { headers: { ...auth, "OpenAI-Beta": "realtime=v1" }, validate: false });
      const conn = await nextConn;
      assert.equal(conn.headers["openai-beta"], "realtime=v1");
      await c.next("session.created");
      c.send({ type: "response.create" });
      const done = await c.next("response.done");
      const closed = await c.closed;
      assert.equal(closed.code, 1000);
      assert.equal(c.all("error").at(-1)?.error.code, "session_idle_timeout");
      await conn.closed;
      const until = Date.now() + 3000;
      while (!lines.some((l) => l.msg === "realtime session finished") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const response = lines.find((l) => l.msg === "request finished" && l.requestId === done.response.id);
      assert.equal(response?.door, "ws");
      assert.equal(response?.model, MODEL);
      assert.equal(response?.provider, "openai");
      assert.equal(response?.inputTokens, 11);
      const session = lines.find((l) => l.msg === "realtime session finished");
      assert.equal(session?.upstream, MODEL);
      assert.equal(session?.outputTokens, 7);
      assert.ok(session?.durationMs >= 1000);
      assert.ok(!JSON.stringify(lines).includes("sk-upstream-secret"), "no key in the logs");
    } finally {
      await g.close();
      await own.close();
    }
  });

  it("an upstream frame over twice maxFrameBytes ends the upstream: an error event, then close 1011", async () => {
    const own = await startFakeOpenAiRealtime({ sessionPadding: 20_000 });
    const g = await startTestGateway(gatewayConfig(own.baseUrl, { maxFrameBytes: 4096 }));
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, MODEL), { headers: auth });
      assert.equal((await c.closed).code, 1011);
      assert.match(c.all("error")[0]?.error.message ?? "", /payload/i);
      assert.equal(c.all("session.created").length, 0);
    } finally {
      await g.close();
      await own.close();
    }
  });
});

describe("upstream profile config", () => {
  it("a profile naming a provider that is missing or not openai stops the start with the field named", async () => {
    await assert.rejects(
      startTestGateway({ realtime: { profiles: { "x/rt": { upstream: "nope/gpt-realtime" } } } }),
      /realtime\.profiles\.x\/rt\.upstream.*'nope'/,
    );
  });

  it("an upstream profile with cascade fields, or a cascade without tts, is a config error naming the field", async () => {
    await assert.rejects(startTestGateway({ realtime: { profiles: { "x/rt": { upstream: MODEL, stt: "local/stt" } } } }), /profiles\.x\/rt\.stt/);
    await assert.rejects(startTestGateway({ realtime: { profiles: { "x/rt": { stt: "local/stt", text: "local/echo" } } } }), /profiles\.x\/rt\.tts/);
  });
});

describe("upstream realtime profile with the official openai SDK (OpenAIRealtimeWS)", () => {
  let tls: TestGateway;
  let ca: Buffer;
  before(async () => {
    const cert = makeSelfSignedCert(mkdtempSync(join(tmpdir(), "spillway-rt-up-")));
    ca = readFileSync(cert.certFile);
    tls = await startTestGateway({ ...gatewayConfig(fake.baseUrl), http: { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } });
  });
  after(async () => {
    await tls.close();
  });

  function sdk(): OpenAIRealtimeWS {
    const client = new OpenAI({ apiKey: KEY, baseURL: `https://127.0.0.1:${tls.gateway.httpPort}/v1` });
    return new OpenAIRealtimeWS({ model: MODEL, options: { ca } }, client);
  }

  function waitFor(rt: OpenAIRealtimeWS, type: string): Promise<any> {
    return new Promise((resolve) => {
      const on = (e: any): void => {
        if (e.type === type) {
          rt.off("event", on);
          resolve(e);
        }
      };
      rt.on("event", on);
    });
  }

  it("speaks the same protocol as a cascade: session.created, audio deltas, response.done", async () => {
    fake.behaviour = { deltas: 4 };
    const rt = sdk();
    const created = waitFor(rt, "session.created");
    const errors: unknown[] = [];
    rt.on("error", (e) => errors.push(e));
    const deltas: string[] = [];
    rt.on("response.output_audio.delta", (e) => deltas.push(e.delta));
    assert.equal((await created).session.model, "gpt-realtime");
    const done = waitFor(rt, "response.done");
    rt.send({ type: "response.create" });
    assert.equal((await done).response.status, "completed");
    assert.equal(deltas.length, 4);
    assert.deepEqual(errors, []);
    rt.close();
  });

  it("an upstream failure reaches the SDK as an error event, then the socket closes with 1011", async () => {
    fake.behaviour = { deltas: 5, closeMidStream: { afterDeltas: 1, code: 4000 } };
    const rt = sdk();
    const errors: Array<{ error?: { code?: string } }> = [];
    rt.on("error", (e) => errors.push(e as never));
    await waitFor(rt, "session.created");
    const closed = new Promise<number>((resolve) => rt.socket.on("close", (code) => resolve(code)));
    rt.send({ type: "response.create" });
    assert.equal(await closed, 1011);
    assert.equal(errors[0]?.error?.code, "upstream_closed");
  });
});
