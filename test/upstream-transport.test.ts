/**
 * A provider's upstream transport (src/providers/shared/upstream-transport.ts):
 * `http2: true` sends HTTPS calls over HTTP/2, where a client that goes away
 * mid-stream resets its own stream and the connection stays for the next
 * call (over HTTP/1.1 the aborted response can only close its socket);
 * `caFile` trusts a private CA for that provider's HTTP and WebSocket calls
 * and no other's. Against a fake OpenAI upstream on node:http2 with TLS
 * (HTTP/1.1 also offered), driven by the official openai SDK, and the fake
 * Azure realtime upstream over wss. Both settings hold through a forward
 * proxy (a provider's `proxy` or HTTPS_PROXY): the tunnelled TLS trusts the
 * `caFile` and offers HTTP/2. A reload that leaves a provider's
 * transport as it was keeps its connections; one that changes it, or fails,
 * is seen too.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { applyEnv, parseConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { configureUpstreamTransports, dispatcherFor } from "../src/providers/shared/upstream-transport.js";
import { NAMED, startFakeProxy, withEnv } from "./helpers/fake-proxy.js";
import { startFakeAzureRealtime, type FakeAzureRealtime } from "./helpers/fake-azure-realtime.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { makeSelfSignedCert, type TestCert } from "./helpers/realtime-tls.js";

const KEY = "sk-gateway-transport";
const UPSTREAM_KEY = "sk-upstream-transport";
const CHUNKS = 40;

/** One request the fake saw. */
interface Seen {
  readonly httpVersion: string;
  /** Which connection carried it (an HTTP/2 session or an HTTP/1.1 socket), numbered as they came. */
  readonly connection: number;
  readonly stream: boolean;
  /** Set when the response was closed before its end (the gateway aborted it). */
  abortedEarly: boolean;
  readonly closed: Promise<void>;
}

interface FakeH2 {
  readonly origin: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** A fake OpenAI chat completions upstream over TLS, HTTP/2 and HTTP/1.1 (ALPN), streaming CHUNKS chunks 15 ms apart. */
async function startFakeH2(cert: TestCert): Promise<FakeH2> {
  const seen: Seen[] = [];
  const ids = new WeakMap<object, number>();
  let next = 0;
  const idOf = (c: object): number => {
    let id = ids.get(c);
    if (id === undefined) ids.set(c, (id = ++next));
    return id;
  };
  const server: Http2SecureServer = createSecureServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile), allowHTTP1: true }, (req: Http2ServerRequest, res: Http2ServerResponse) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      if (req.headers["authorization"] !== `Bearer ${UPSTREAM_KEY}`) {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "bad key", type: "invalid_request_error" } }));
        return;
      }
      const j = JSON.parse(body) as { stream?: boolean; model: string };
      const connection = req.httpVersion === "2.0" ? idOf(req.stream.session ?? req.stream) : idOf(req.socket);
      let ended = false;
      let markClosed!: () => void;
      const s: Seen = { httpVersion: req.httpVersion, connection, stream: j.stream === true, abortedEarly: false, closed: new Promise<void>((r) => (markClosed = r)) };
      seen.push(s);
      res.on("close", () => {
        s.abortedEarly = !ended;
        markClosed();
      });
      const usage = { prompt_tokens: 5, completion_tokens: CHUNKS, total_tokens: 5 + CHUNKS };
      if (!j.stream) {
        ended = true;
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", created: 1, model: j.model, choices: [{ index: 0, message: { role: "assistant", content: "whole answer" }, finish_reason: "stop" }], usage }),
        );
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (delta: Record<string, unknown>, finish: string | null, u?: unknown): string =>
        `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: j.model, choices: u ? [] : [{ index: 0, delta, finish_reason: finish }], ...(u ? { usage: u } : {}) })}\n\n`;
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed || res.writableEnded) return clearInterval(timer);
        if (i < CHUNKS) res.write(chunk(i === 0 ? { role: "assistant", content: "w0 " } : { content: `w${i} ` }, null));
        else {
          clearInterval(timer);
          ended = true;
          res.end(chunk({}, "stop") + chunk({}, null, usage) + "data: [DONE]\n\n");
        }
        i++;
      }, 15);
      res.on("close", () => clearInterval(timer));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (s: ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  return {
    origin: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

let cert: TestCert;
let fake: FakeH2;
let azure: FakeAzureRealtime;
let tg: TestGateway;
const client = (): OpenAI => new OpenAI({ apiKey: KEY, baseURL: `${tg.origin}/v1`, maxRetries: 0 });

before(async () => {
  cert = makeSelfSignedCert(mkdtempSync(join(tmpdir(), "spillway-transport-")));
  fake = await startFakeH2(cert);
  azure = await startFakeAzureRealtime({ apiKey: UPSTREAM_KEY, deployments: ["rt-dep"], cert });
  const base = { type: "openai", baseUrl: `${fake.origin}/v1`, apiKey: UPSTREAM_KEY, models: ["m"] };
  const az = { type: "azure", baseUrl: azure.tlsEndpoint!, apiKey: UPSTREAM_KEY, apiVersion: "v1", realtimeApiVersion: "v1", models: ["rt-dep"] };
  tg = await startTestGateway({
    providers: {
      h2: { ...base, http2: true, caFile: cert.certFile },
      h1: { ...base, caFile: cert.certFile },
      untrusted: base,
      aztrusted: { ...az, caFile: cert.certFile },
      azuntrusted: az,
    },
    routing: { maxAttempts: 1 },
    auth: { keys: [{ key: KEY, name: "t" }] },
    realtime: { profiles: { "voice/trusted": { upstream: "aztrusted/rt-dep" }, "voice/untrusted": { upstream: "azuntrusted/rt-dep" } } },
  });
});
after(async () => {
  await tg.close();
  await fake.close();
  await azure.close();
});

/** Streams from `model`, reads `n` chunks, then goes away; resolves when the upstream saw its response closed. */
async function streamThenLeave(model: string, n: number): Promise<Seen> {
  const before = fake.seen.length;
  const stream = await client().chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true });
  let got = 0;
  for await (const _ of stream) if (++got === n) break; // break aborts the SDK's request
  const s = fake.seen[before];
  assert.ok(s, "the upstream saw the request");
  await s.closed;
  return s;
}

async function streamWhole(model: string): Promise<{ text: string; usage: unknown; seen: Seen }> {
  const before = fake.seen.length;
  const stream = await client().chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage: unknown;
  for await (const c of stream) {
    text += c.choices[0]?.delta.content ?? "";
    if (c.usage) usage = c.usage;
  }
  return { text, usage, seen: fake.seen[before]! };
}

describe("upstream transport: http2", () => {
  it("http2: true streams over HTTP/2 and whole answers too; without it the same upstream is spoken to over HTTP/1.1", async () => {
    const a = await streamWhole("h2/m");
    assert.equal(a.seen.httpVersion, "2.0");
    assert.equal(a.text, Array.from({ length: CHUNKS }, (_, i) => `w${i} `).join(""));
    const u = a.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    assert.deepEqual([u.prompt_tokens, u.completion_tokens, u.total_tokens], [5, CHUNKS, 5 + CHUNKS]);
    const before = fake.seen.length;
    const whole = await client().chat.completions.create({ model: "h2/m", messages: [{ role: "user", content: "hi" }] });
    assert.equal(whole.choices[0]!.message.content, "whole answer");
    assert.equal(whole.usage?.total_tokens, 5 + CHUNKS);
    assert.equal(fake.seen[before]!.httpVersion, "2.0");
    assert.equal(fake.seen[before]!.stream, false);
    const b = await streamWhole("h1/m");
    assert.equal(b.seen.httpVersion, "1.1");
    assert.equal(b.text, a.text);
  });

  it("a client that goes away mid-stream resets its HTTP/2 stream only: the upstream response is closed early and the next call rides the same connection", async () => {
    const first = await streamThenLeave("h2/m", 3);
    assert.equal(first.httpVersion, "2.0");
    assert.equal(first.abortedEarly, true, "the upstream response was cut before its end");
    const again = await streamWhole("h2/m");
    assert.equal(again.seen.connection, first.connection, "the same HTTP/2 connection carried the next call");
    const third = await streamThenLeave("h2/m", 2);
    assert.equal(third.connection, first.connection);
    assert.equal(third.abortedEarly, true);
  });

  it("over HTTP/1.1 (http2 off) the aborted response costs its connection: the next call comes on a new one", async () => {
    const first = await streamThenLeave("h1/m", 3);
    assert.equal(first.httpVersion, "1.1");
    assert.equal(first.abortedEarly, true);
    const again = await streamWhole("h1/m");
    assert.notEqual(again.seen.connection, first.connection);
  });
});

describe("upstream transport: caFile", () => {
  it("a provider without the CA does not trust the upstream's certificate: 502, nothing reaches it", async () => {
    const before = fake.seen.length;
    await assert.rejects(client().chat.completions.create({ model: "untrusted/m", messages: [{ role: "user", content: "hi" }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 502);
      return true;
    });
    assert.equal(fake.seen.length, before);
  });

  it("a realtime upstream over wss:// trusts caFile too; the same upstream without it is an error event, then a close", async () => {
    const ok = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "voice/trusted"), { headers: { Authorization: `Bearer ${KEY}` } });
    await ok.next("session.created");
    ok.ws.close();
    const bad = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "voice/untrusted"), { headers: { Authorization: `Bearer ${KEY}` } });
    const closed = await bad.closed;
    assert.equal(closed.code, 1011);
    assert.equal(bad.all("error").length, 1);
  });

  it("a caFile that cannot be read refuses the config, naming the field", async () => {
    await assert.rejects(
      startTestGateway({ providers: { x: { type: "openai", baseUrl: `${fake.origin}/v1`, apiKey: "k", caFile: join(tmpdir(), "no-such-ca.pem") } } }),
      /providers\.x\.caFile: cannot read .*no-such-ca\.pem \(ENOENT\)/,
    );
  });

  it("rejects http2 and caFile of the wrong type, naming the field", async () => {
    await assert.rejects(startTestGateway({ providers: { x: { type: "openai", baseUrl: `${fake.origin}/v1`, http2: "yes" } } }), /providers\.x\.http2/);
    await assert.rejects(startTestGateway({ providers: { x: { type: "anthropic", caFile: "" } } }), /providers\.x\.caFile/);
  });
});

describe("upstream transport: reloads", () => {
  const env = { http: undefined, https: undefined, noProxy: "localhost" };

  it("settings that did not change keep their dispatcher; a change builds a new one; an unreadable caFile changes nothing and builds nothing", () => {
    const settings = { type: "openai", http2: true, caFile: cert.certFile };
    configureUpstreamTransports({ "t-keep": settings, "t-change": settings }, env);
    const kept = dispatcherFor("t-keep");
    const changed = dispatcherFor("t-change");
    configureUpstreamTransports({ "t-keep": { ...settings }, "t-change": { ...settings, http2: false } }, env);
    assert.equal(dispatcherFor("t-keep"), kept, "same settings: the same dispatcher, its connections kept");
    assert.notEqual(dispatcherFor("t-change"), changed, "changed settings: a new dispatcher");
    const current = dispatcherFor("t-change");
    assert.throws(
      () => configureUpstreamTransports({ "t-change": { ...settings, http2: true }, "t-bad": { type: "openai", caFile: join(tmpdir(), "no-such-ca.pem") } }, env),
      /providers\.t-bad\.caFile: cannot read/,
    );
    assert.equal(dispatcherFor("t-change"), current, "a refused config leaves every provider as it was");
  });

  it("through a gateway: a reload that changes something else keeps the HTTP/2 connection; turning http2 off moves the provider to HTTP/1.1; a refused reload keeps serving", async () => {
    const provider = (extra: Record<string, unknown>): Record<string, unknown> => ({ type: "openai", baseUrl: `${fake.origin}/v1`, apiKey: UPSTREAM_KEY, models: ["m"], caFile: cert.certFile, http2: true, ...extra });
    const configOf = (p: Record<string, unknown>, models: string[] = ["m"]): Config =>
      parseConfig(applyEnv({ http: { host: "127.0.0.1", port: 0 }, grpc: { host: "127.0.0.1", port: 0 }, routing: { maxAttempts: 1 }, providers: { local: { type: "local", tokenDelayMs: 0 }, rl: { ...p, models } } }, {}));
    let next = configOf(provider({}));
    const gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { rl: provider({}) } }, { loadConfig: () => next });
    const c = new OpenAI({ apiKey: "unused", baseURL: gw.baseUrl, maxRetries: 0 });
    const ask = async (): Promise<Seen> => {
      const before = fake.seen.length;
      const r = await c.chat.completions.create({ model: "rl/m", messages: [{ role: "user", content: "hi" }] });
      assert.equal(r.choices[0]!.message.content, "whole answer");
      return fake.seen[before]!;
    };
    try {
      const first = await ask();
      assert.equal(first.httpVersion, "2.0");
      next = configOf(provider({}), ["m", "other"]);
      assert.equal(gw.gateway.reload().ok, true);
      assert.equal((await ask()).connection, first.connection, "the reload kept the connection");
      next = configOf(provider({ http2: false }));
      assert.equal(gw.gateway.reload().ok, true);
      assert.equal((await ask()).httpVersion, "1.1");
      next = configOf(provider({ caFile: join(tmpdir(), "no-such-ca.pem") }));
      const refused = gw.gateway.reload();
      assert.equal(refused.ok, false);
      assert.equal((await ask()).httpVersion, "1.1", "the refused reload left the provider as it was");
    } finally {
      await gw.close();
    }
  });
});

describe("upstream transport: http2 and caFile through a forward proxy", () => {
  it("an explicit proxy and HTTPS_PROXY both tunnel with CONNECT, trust the caFile, and speak HTTP/2 when http2 is on", async () => {
    const proxy = await startFakeProxy();
    const port = new URL(fake.origin).port;
    const named = (extra: Record<string, unknown>): Record<string, unknown> => ({ type: "openai", baseUrl: `https://${NAMED}:${port}/v1`, apiKey: UPSTREAM_KEY, models: ["m"], caFile: cert.certFile, ...extra });
    const explicit = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { pxh2: { ...named({}), http2: true, proxy: proxy.url }, pxh1: { ...named({}), proxy: proxy.url } } });
    // The environment is read when the providers are built: set it for this gateway's start only.
    const fromEnv = await withEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: undefined }, () => startTestGateway({ routing: { maxAttempts: 1 }, providers: { envh2: named({ http2: true }), envh1: named({}) } }));
    try {
      for (const [gw, model, version] of [
        [explicit, "pxh2/m", "2.0"],
        [explicit, "pxh1/m", "1.1"],
        [fromEnv, "envh2/m", "2.0"],
        [fromEnv, "envh1/m", "1.1"],
      ] as const) {
        const c = new OpenAI({ apiKey: "unused", baseURL: gw.baseUrl, maxRetries: 0 });
        const logged = proxy.log.length;
        const before = fake.seen.length;
        const stream = await c.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true });
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        assert.equal(text, Array.from({ length: CHUNKS }, (_, i) => `w${i} `).join(""), model);
        assert.equal(fake.seen[before]!.httpVersion, version, model);
        assert.deepEqual(proxy.log.slice(logged), [`CONNECT ${NAMED}:${port}`], `${model} was tunnelled`);
      }
    } finally {
      await explicit.close();
      await fromEnv.close();
      await proxy.close();
    }
  });

  it("a realtime upstream over wss:// through the proxy: tunnelled, and the caFile trusted on the tunnel", async () => {
    const proxy = await startFakeProxy();
    const endpoint = new URL(azure.tlsEndpoint!);
    endpoint.hostname = NAMED;
    const az = { type: "azure", baseUrl: endpoint.origin, apiKey: UPSTREAM_KEY, apiVersion: "v1", realtimeApiVersion: "v1", models: ["rt-dep"], proxy: proxy.url };
    const gw = await startTestGateway({
      providers: { aztrusted: { ...az, caFile: cert.certFile }, azuntrusted: az },
      realtime: { profiles: { "voice/trusted": { upstream: "aztrusted/rt-dep" }, "voice/untrusted": { upstream: "azuntrusted/rt-dep" } } },
    });
    try {
      const ok = await RealtimeTestClient.connect(realtimeUrl(gw.origin, "voice/trusted"));
      await ok.next("session.created");
      ok.ws.close();
      assert.deepEqual(proxy.log, [`CONNECT ${NAMED}:${endpoint.port}`]);
      const bad = await RealtimeTestClient.connect(realtimeUrl(gw.origin, "voice/untrusted"));
      assert.equal((await bad.closed).code, 1011, "without the CA the tunnelled TLS is refused");
      assert.equal(bad.all("error").length, 1);
    } finally {
      await gw.close();
      await proxy.close();
    }
  });
});
