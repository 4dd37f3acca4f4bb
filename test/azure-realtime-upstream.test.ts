/**
 * Azure OpenAI realtime deployments as upstream realtime models: a profile
 * `{ upstream: azure/<deployment> }` makes the door relay the session to the
 * azure provider's realtime WebSocket — GA `/openai/v1/realtime?model=…`
 * (api-version `v1`) or preview `/openai/realtime?api-version=…&deployment=…`
 * — with `api-key` (or an Entra token), and the gateway's key, limits,
 * metrics and logs. The fake Azure endpoint checks route, query, key and
 * deployment as Azure does, and is checked against the official openai
 * SDK's `OpenAIRealtimeWS.azure()`. Faults (close mid-stream, error event,
 * slow first byte, bad key) reach the client as an `error` event and a close
 * it can act on; a client that goes away closes the upstream. Driven with
 * `ws` and with the openai SDK's `OpenAIRealtimeWS` pointed at the gateway.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import OpenAI, { AzureOpenAI } from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import pino from "pino";
import WebSocket from "ws";
import { applyEnv, parseConfig } from "../src/config/load.js";
import { resolveUpstreamTarget } from "../src/doors/ws/upstream/upstream-target.js";
import { azureRealtimeEndpoint, azureRealtimeUrl } from "../src/providers/azure/azure-realtime.js";
import { startFakeAzureRealtime, type FakeAzureRealtime } from "./helpers/fake-azure-realtime.js";
import { DELTA_BYTES } from "./helpers/fake-openai-realtime.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { makeSelfSignedCert, type TestCert } from "./helpers/realtime-tls.js";

const KEY = "sk-gateway-azure-voice";
const AZURE_KEY = "azure-upstream-secret-key";
const ENTRA = "entra-token-abc";
const DEPLOYMENT = "gpt-realtime-dep";
const PREVIEW_DEPLOYMENT = "rt-preview-dep";
/** GA form: the profile id is the upstream id. */
const GA = `azure/${DEPLOYMENT}`;
/** Preview form, through a provider whose baseUrl ends in /openai. */
const PREVIEW = "voice/azure-preview";
const ENTRA_PROFILE = "voice/azure-entra";
const BAD_KEY = "voice/azure-bad-key";
const auth = { Authorization: `Bearer ${KEY}` };

let cert: TestCert;
let ca: Buffer;
let fake: FakeAzureRealtime;
let tg: TestGateway;

function gatewayConfig(endpoint: string, realtime: Record<string, any> = {}): Record<string, any> {
  // "gone-dep" is configured but not deployed at the (fake) resource.
  const models = [DEPLOYMENT, PREVIEW_DEPLOYMENT, "gpt-4o-mini-dep", "gone-dep"];
  return {
    providers: {
      // Chats on a GA dated version, realtime on the GA v1 endpoint.
      azure: { type: "azure", baseUrl: endpoint, apiKey: AZURE_KEY, apiVersion: "2024-10-21", realtimeApiVersion: "v1", models },
      azprev: { type: "azure", baseUrl: `${endpoint}/openai/`, apiKeys: [{ key: AZURE_KEY }], apiVersion: "2025-04-01-preview", models },
      azentra: { type: "azure", baseUrl: endpoint, azureAdToken: ENTRA, apiVersion: "v1", models },
      azbad: { type: "azure", baseUrl: endpoint, apiKey: "not-the-key", apiVersion: "v1", models },
    },
    auth: {
      keys: [
        { key: KEY, name: "voice", models: ["azure/*", "azprev/*", "azentra/*", "azbad/*", "voice/*"] },
        { key: "sk-gateway-local", name: "local-only", models: ["local/*"] },
      ],
    },
    realtime: {
      profiles: {
        [GA]: { upstream: GA },
        [PREVIEW]: { upstream: `azprev/${PREVIEW_DEPLOYMENT}` },
        [ENTRA_PROFILE]: { upstream: `azentra/${DEPLOYMENT}` },
        [BAD_KEY]: { upstream: `azbad/${DEPLOYMENT}` },
        "voice/azure-gone": { upstream: "azure/gone-dep" },
      },
      ...realtime,
    },
  };
}

before(async () => {
  cert = makeSelfSignedCert(mkdtempSync(join(tmpdir(), "spillway-azure-rt-")));
  ca = readFileSync(cert.certFile);
  fake = await startFakeAzureRealtime({ apiKey: AZURE_KEY, entraToken: ENTRA, deployments: [DEPLOYMENT, PREVIEW_DEPLOYMENT], cert });
  tg = await startTestGateway(gatewayConfig(fake.endpoint));
});
after(async () => {
  await tg.close();
  await fake.close();
});

async function open(model = GA, headers: Record<string, string> = auth): Promise<RealtimeTestClient> {
  return RealtimeTestClient.connect(realtimeUrl(tg.origin, model), { headers });
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

/** The fake's next accepted connection, or a rejection when the client's socket closes first (the upgrade was refused). */
function upstreamOf<T>(next: Promise<T>, closed: Promise<unknown>, what: () => string = () => ""): Promise<T> {
  return Promise.race([
    next,
    closed.then(() => {
      throw new Error(`the client socket closed before the fake accepted an upstream connection ${what()}`);
    }),
  ]);
}

function query(url: string): { path: string; params: Record<string, string> } {
  const u = new URL(url, "http://x");
  return { path: u.pathname, params: Object.fromEntries(u.searchParams) };
}

describe("the Azure realtime endpoint", () => {
  it("GA (v1) and preview URLs from the resource endpoint (a trailing /openai accepted, https → wss, http → ws); api-key or Entra bearer", () => {
    assert.equal(azureRealtimeUrl("https://res.openai.azure.com", "v1", "rt"), "wss://res.openai.azure.com/openai/v1/realtime?model=rt");
    assert.equal(azureRealtimeUrl("https://res.openai.azure.com/openai/", "2025-04-01-preview", "rt"), "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=rt");
    assert.equal(azureRealtimeUrl("http://127.0.0.1:9", "v1", "a b"), "ws://127.0.0.1:9/openai/v1/realtime?model=a+b");
    const keyed = azureRealtimeEndpoint({ baseUrl: "https://r.openai.azure.com", apiVersion: "2024-10-21", realtimeApiVersion: "v1", apiKey: "k", headers: { "x-extra": "1" } }, "rt");
    assert.equal(keyed.form, "ga");
    assert.deepEqual(keyed.headers, { "x-extra": "1", "api-key": "k" });
    const entra = azureRealtimeEndpoint({ baseUrl: "https://r.openai.azure.com", apiVersion: "2025-04-01-preview", azureAdToken: "t" }, "rt");
    assert.equal(entra.form, "preview");
    assert.deepEqual(entra.headers, { authorization: "Bearer t" });
  });

  it("from the environment as AzureOpenAI reads it: AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, OPENAI_API_VERSION", () => {
    const env = { AZURE_OPENAI_ENDPOINT: "https://res.openai.azure.com/", AZURE_OPENAI_API_KEY: "env-key", OPENAI_API_VERSION: "2025-04-01-preview" };
    const config = parseConfig(applyEnv({ realtime: { profiles: { "azure/rt": { upstream: "azure/rt" } } } }, env));
    const target = resolveUpstreamTarget("azure/rt", "azure/rt", config.providers);
    assert.equal(target.url, "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=rt");
    assert.equal(target.headers["api-key"], "env-key");
    assert.equal(target.model, "rt");
  });

  it("the fake accepts what the official SDK's OpenAIRealtimeWS.azure() sends, and the gateway's preview upgrade is the same request", async () => {
    const client = new AzureOpenAI({ endpoint: fake.tlsEndpoint!, apiKey: AZURE_KEY, apiVersion: "2025-04-01-preview", deployment: PREVIEW_DEPLOYMENT });
    const sdkConn = fake.nextConnection();
    const rt = await OpenAIRealtimeWS.azure(client, { options: { ca } });
    const errors: unknown[] = [];
    rt.on("error", (e) => errors.push(e));
    const created = new Promise<any>((resolve) => rt.on("session.created", resolve));
    const sdkClosed = new Promise((resolve) => rt.socket.on("close", resolve));
    const fromSdk = await upstreamOf(sdkConn, sdkClosed, () => JSON.stringify(errors));
    assert.equal((await created).session.model, PREVIEW_DEPLOYMENT);
    assert.deepEqual(errors, []);
    rt.close();
    // Our URL builder gives the SDK's URL for the same endpoint.
    assert.equal(azureRealtimeUrl(fake.tlsEndpoint!, "2025-04-01-preview", PREVIEW_DEPLOYMENT), rt.url.toString());

    const gwConn = fake.nextConnection();
    const c = await open(PREVIEW);
    const fromGateway = await upstreamOf(gwConn, c.closed, () => JSON.stringify(c.all("error")));
    await c.next("session.created");
    assert.deepEqual(query(fromGateway.url), query(fromSdk.url));
    assert.deepEqual(query(fromGateway.url), { path: "/openai/realtime", params: { "api-version": "2025-04-01-preview", deployment: PREVIEW_DEPLOYMENT } });
    assert.equal(fromGateway.headers["api-key"], fromSdk.headers["api-key"]);
    assert.equal(fromGateway.headers["authorization"], undefined);
    assert.equal(fromSdk.headers["authorization"], undefined);
    await c.close();
  });

  it("an Entra ID token goes as authorization: Bearer on the GA endpoint, with no api-key", async () => {
    const next = fake.nextConnection();
    const c = await open(ENTRA_PROFILE);
    const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
    await c.next("session.created");
    assert.deepEqual(query(conn.url), { path: "/openai/v1/realtime", params: { model: DEPLOYMENT } });
    assert.equal(conn.headers["authorization"], `Bearer ${ENTRA}`);
    assert.equal(conn.headers["api-key"], undefined);
    await c.close();
  });
});

describe("an Azure realtime deployment over ws", () => {
  it("relays events both ways on the GA endpoint with the resource key; binary audio becomes append; tokens, audio and session seconds reach the metrics", async () => {
    fake.behaviour = { deltas: 3, usage: { input: 13, output: 5 } };
    const before = await metrics();
    const next = fake.nextConnection();
    const c = await open();
    const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
    const created = await c.next("session.created");
    assert.equal(created.session.model, DEPLOYMENT);
    assert.deepEqual(query(conn.url), { path: "/openai/v1/realtime", params: { model: DEPLOYMENT } });
    assert.equal(conn.headers["api-key"], AZURE_KEY, "the upstream gets the resource key, never the gateway key");
    assert.equal(conn.headers["authorization"], undefined);
    c.send({ type: "session.update", session: { type: "realtime", instructions: "Be brief.", model: GA } });
    assert.equal((await c.next("session.updated")).session.instructions, "Be brief.");
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
    assert.deepEqual(conn.events.map((e) => e["type"]), ["session.update", "input_audio_buffer.append", "input_audio_buffer.append", "input_audio_buffer.commit", "response.create"]);
    assert.equal(conn.events[0]!["session"].model, DEPLOYMENT, "session.model is the deployment upstream");
    assert.deepEqual(c.invalid, []);
    await c.close();
    assert.equal((await conn.closed).code, 1000);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => metricValue(after, name, labels) - metricValue(before, name, labels);
    assert.equal(delta("spillway_tokens_total", { direction: "in", provider: "azure" }), 13);
    assert.equal(delta("spillway_tokens_total", { direction: "out", provider: "azure" }), 5);
    assert.ok(Math.abs(delta("spillway_audio_seconds_total", { direction: "out", provider: "azure" }) - 0.3) < 1e-6);
    assert.ok(Math.abs(delta("spillway_audio_seconds_total", { direction: "in", provider: "azure" }) - 0.3) < 1e-6);
    assert.equal(delta("spillway_requests_total", { door: "ws", model: GA, provider: "azure", outcome: "ok" }), 1);
    assert.ok(delta("spillway_realtime_session_seconds_total", { model: GA, kind: "upstream" }) > 0);
  });

  it("the gateway's key applies (401 without one, 403 for a key without these models); a frame over maxFrameBytes is an error event and close 1009", async () => {
    await assert.rejects(open(GA, {}), /401/);
    await assert.rejects(open(GA, { Authorization: "Bearer sk-gateway-local" }), /403/);
    const g = await startTestGateway(gatewayConfig(fake.endpoint, { maxFrameBytes: 4096 }));
    try {
      const next = fake.nextConnection();
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, GA), { headers: auth });
      const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
      await c.next("session.created");
      c.send({ type: "input_audio_buffer.append", audio: Buffer.alloc(6000).toString("base64") });
      assert.equal((await c.closed).code, 1009);
      assert.equal(c.all("error").at(-1)?.error.code, "message_too_big");
      await conn.closed;
      assert.equal(conn.events.length, 0, "the oversized frame never went upstream");
    } finally {
      await g.close();
    }
  });

  it("a client that goes away mid-response closes the Azure socket at once, and its lease is released", async () => {
    fake.behaviour = { deltas: 200, deltaDelayMs: 20 };
    const next = fake.nextConnection();
    const c = await open();
    const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
    await c.next("session.created");
    c.send({ type: "response.create" });
    await c.next("response.output_audio.delta");
    c.ws.terminate();
    assert.equal((await conn.closed).code, 1000);
    const until = Date.now() + 5000;
    while (tg.gateway.engine.admission.openStreams > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(tg.gateway.engine.admission.openStreams, 0);
  });
});

describe("Azure upstream faults", () => {
  it("a bad resource key: Azure's 401 reaches the client as an error event (upstream_refused, HTTP 401, Azure's reason), then close 1011", async () => {
    const upgrades = fake.upgrades.length;
    const c = await open(BAD_KEY);
    assert.equal((await c.closed).code, 1011);
    const err = c.all("error")[0]!;
    assert.equal(err.error.type, "server_error");
    assert.equal(err.error.code, "upstream_refused");
    assert.match(err.error.message, /HTTP 401/);
    assert.match(err.error.message, /Access denied due to invalid subscription key/);
    assert.equal(fake.upgrades[upgrades]?.headers["api-key"], "not-the-key");
    assert.ok(!err.error.message.includes("not-the-key"), "the key is not echoed to the client");
  });

  it("a deployment Azure does not have: its 404 DeploymentNotFound is an error event naming it, then close 1011", async () => {
    const c = await open("voice/azure-gone");
    assert.equal((await c.closed).code, 1011);
    const err = c.all("error")[0]!;
    assert.equal(err.error.code, "upstream_refused");
    assert.match(err.error.message, /HTTP 404/);
    assert.match(err.error.message, /deployment for this resource does not exist/);
  });

  it("the upstream closes mid-stream: an error event (upstream_closed), then close 1011, after the audio already relayed", async () => {
    fake.behaviour = { deltas: 5, closeMidStream: { afterDeltas: 2 } };
    const c = await open();
    await c.next("session.created");
    c.send({ type: "response.create" });
    assert.equal((await c.closed).code, 1011);
    const err = c.all("error").at(-1)!;
    assert.equal(err.error.code, "upstream_closed");
    assert.equal(c.types().at(-1), "error");
    assert.equal(c.all("response.output_audio.delta").length, 2);
  });

  it("an upstream error event is relayed as it is; the session goes on", async () => {
    fake.behaviour = { errorOnResponse: { code: "invalid_value", message: "azure fake says no" } };
    const c = await open();
    await c.next("session.created");
    c.send({ type: "response.create" });
    assert.equal((await c.next("error")).error.message, "azure fake says no");
    fake.behaviour = {};
    c.send({ type: "response.create" });
    assert.equal((await c.next("response.done")).response.status, "completed");
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.close();
  });

  it("a slow first byte: events sent meanwhile reach Azure in order once it opens", async () => {
    fake.behaviour = { slowFirstByteMs: 300 };
    const next = fake.nextConnection();
    const c = await open(PREVIEW);
    c.send({ type: "session.update", session: { type: "realtime", instructions: "early" } });
    c.send({ type: "response.create" });
    const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
    await c.next("response.done");
    assert.deepEqual(conn.events.map((e) => e["type"]), ["session.update", "response.create"]);
    assert.deepEqual(c.types().slice(0, 3), ["session.created", "session.updated", "response.created"]);
    await c.close();
  });

  it("Azure slower than upstreamConnectTimeoutMs: error event upstream_timeout, close 1011", async () => {
    const g = await startTestGateway(gatewayConfig(fake.endpoint, { upstreamConnectTimeoutMs: 200 }));
    fake.behaviour = { slowFirstByteMs: 2000 };
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, GA), { headers: auth });
      assert.equal((await c.closed).code, 1011);
      assert.equal(c.all("error")[0]?.error.code, "upstream_timeout");
    } finally {
      fake.behaviour = {};
      await g.close();
    }
  });
});

describe("Azure relayed sessions: idle timeout and logs", () => {
  it("closes an idle session with an error event; one log line per response and per session naming azure, without the key", async () => {
    const lines: any[] = [];
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    });
    const g = await startTestGateway(gatewayConfig(fake.endpoint, { idleTimeoutSeconds: 1 }), { logger: pino({ level: "info" }, dest) });
    fake.behaviour = { usage: { input: 4, output: 6 } };
    try {
      const next = fake.nextConnection();
      const c = await RealtimeTestClient.connect(realtimeUrl(g.origin, GA), { headers: auth });
      const conn = await upstreamOf(next, c.closed, () => JSON.stringify(c.all("error")));
      await c.next("session.created");
      c.send({ type: "response.create" });
      const done = await c.next("response.done");
      assert.equal((await c.closed).code, 1000);
      assert.equal(c.all("error").at(-1)?.error.code, "session_idle_timeout");
      await conn.closed;
      const until = Date.now() + 3000;
      while (!lines.some((l) => l.msg === "realtime session finished") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const response = lines.find((l) => l.msg === "request finished" && l.requestId === done.response.id);
      assert.equal(response?.door, "ws");
      assert.equal(response?.provider, "azure");
      assert.equal(response?.outputTokens, 6);
      const session = lines.find((l) => l.msg === "realtime session finished");
      assert.equal(session?.upstream, GA);
      assert.equal(session?.provider, "azure");
      assert.equal(session?.inputTokens, 4);
      assert.ok(!JSON.stringify(lines).includes(AZURE_KEY), "no key in the logs");
    } finally {
      fake.behaviour = {};
      await g.close();
    }
  });
});

describe("Azure realtime profile config, /v1/models and /readyz", () => {
  it("an azure upstream naming a deployment the provider does not list stops the start, naming the field", async () => {
    const raw = gatewayConfig(fake.endpoint);
    raw["realtime"]["profiles"] = { "x/rt": { upstream: "azure/no-such-deployment" } };
    await assert.rejects(startTestGateway(raw), /realtime\.profiles\.x\/rt\.upstream: 'azure\/no-such-deployment' names the deployment 'no-such-deployment', which is not among providers\.azure\.models/);
  });

  it("a bad realtimeApiVersion names the field; an azure upstream with no deployment is refused", async () => {
    const raw = gatewayConfig(fake.endpoint);
    raw["providers"]["azure"]["realtimeApiVersion"] = "latest";
    await assert.rejects(startTestGateway(raw), /providers\.azure\.realtimeApiVersion/);
    await assert.rejects(startTestGateway({ providers: { azure: { type: "azure", baseUrl: fake.endpoint, apiKey: "k", apiVersion: "v1" } }, realtime: { profiles: { "x/rt": { upstream: "azure/" } } } }), /realtime\.profiles\.x\/rt\.upstream: 'azure\/' names no model/);
  });

  it("lists the Azure realtime profiles in /v1/models with the realtime capability, and the azure providers in /readyz", async () => {
    const res = await fetch(`${tg.baseUrl}/models`, { headers: auth });
    const data = ((await res.json()) as any).data as Array<{ id: string; capabilities: string[] }>;
    assert.deepEqual(data.find((m) => m.id === GA)?.capabilities, ["realtime"]);
    assert.deepEqual(data.find((m) => m.id === PREVIEW)?.capabilities, ["realtime"]);
    const ready = (await (await fetch(`${tg.origin}/readyz`)).json()) as { status: string; providers: Array<{ name: string; state: string }> };
    assert.equal(ready.status, "ready");
    for (const name of ["azure", "azprev", "azentra", "azbad"]) assert.equal(ready.providers.find((p) => p.name === name)?.state, "ok", name);
  });
});

describe("an Azure realtime deployment with the official openai SDK (OpenAIRealtimeWS) at the gateway", () => {
  let tls: TestGateway;
  before(async () => {
    tls = await startTestGateway({ ...gatewayConfig(fake.endpoint), http: { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } });
  });
  after(async () => {
    await tls.close();
  });

  function sdk(model = GA): OpenAIRealtimeWS {
    const client = new OpenAI({ apiKey: KEY, baseURL: `https://127.0.0.1:${tls.gateway.httpPort}/v1` });
    return new OpenAIRealtimeWS({ model, options: { ca } }, client);
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
    const next = fake.nextConnection();
    const rt = sdk();
    const created = waitFor(rt, "session.created");
    const errors: unknown[] = [];
    rt.on("error", (e) => errors.push(e));
    const deltas: string[] = [];
    rt.on("response.output_audio.delta", (e) => deltas.push(e.delta));
    const closed = new Promise((resolve) => rt.socket.on("close", resolve));
    assert.equal((await upstreamOf(next, closed, () => String(errors))).headers["api-key"], AZURE_KEY);
    assert.equal((await upstreamOf(created, closed)).session.model, DEPLOYMENT);
    const done = waitFor(rt, "response.done");
    rt.send({ type: "response.create" });
    assert.equal((await done).response.status, "completed");
    assert.equal(deltas.length, 4);
    assert.deepEqual(errors, []);
    rt.close();
  });

  it("a bad Azure key reaches the SDK as an error event it can act on (upstream_refused), then close 1011", async () => {
    const rt = sdk(BAD_KEY);
    const errors: Array<{ error?: { code?: string; message?: string } }> = [];
    rt.on("error", (e) => errors.push(e as never));
    const closed = new Promise<number>((resolve) => rt.socket.on("close", (code) => resolve(code)));
    assert.equal(await closed, 1011);
    assert.equal(errors[0]?.error?.code, "upstream_refused");
    assert.match(errors[0]?.error?.message ?? "", /HTTP 401/);
  });

  it("Azure closing mid-stream reaches the SDK as an error event, then close 1011", async () => {
    fake.behaviour = { deltas: 5, closeMidStream: { afterDeltas: 1, code: 4000 } };
    const rt = sdk();
    const errors: Array<{ error?: { code?: string } }> = [];
    rt.on("error", (e) => errors.push(e as never));
    const closed = new Promise<number>((resolve) => rt.socket.on("close", (code) => resolve(code)));
    await upstreamOf(waitFor(rt, "session.created"), closed);
    rt.send({ type: "response.create" });
    assert.equal(await closed, 1011);
    assert.equal(errors[0]?.error?.code, "upstream_closed");
  });
});
