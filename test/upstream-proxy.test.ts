/**
 * Upstream calls through a forward proxy (src/providers/shared/upstream-transport.ts):
 * a provider's `proxy` setting, or the process's HTTP_PROXY / HTTPS_PROXY /
 * NO_PROXY when it has none, for HTTP (absolute-form requests to the proxy
 * for http://) and WebSockets (a CONNECT tunnel); loopback hosts never go to
 * an environment proxy, and `proxy: false` goes direct whatever the
 * environment says. Against a real forward proxy on loopback that resolves
 * the name `upstream.test` (unknown to DNS) to the fakes, driven with the
 * openai SDK and a realtime client. One table runs the setting over every
 * provider type that calls out (Vertex's OAuth token fetch included): a
 * provider type added later belongs in it.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { wavHeader } from "../src/audio/wav.js";
import { bypassesProxy, envProxy } from "../src/providers/shared/upstream-transport.js";
import { startFakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeAzure } from "./helpers/fake-azure.js";
import { NAMED, startFakeProxy, withEnv, type FakeProxy } from "./helpers/fake-proxy.js";
import { startFakeBedrock } from "./helpers/fake-bedrock.js";
import { DEEPGRAM_KEY, startFakeDeepgram } from "./helpers/fake-deepgram.js";
import { ELEVENLABS_KEY, startFakeElevenLabs } from "./helpers/fake-elevenlabs.js";
import { startFakeGemini } from "./helpers/fake-gemini.js";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startFakeOpenAiRealtime, type FakeOpenAiRealtime } from "./helpers/fake-openai-realtime.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

const KEY = "sk-gateway-proxy";

let proxy: FakeProxy;
let fake: FakeUpstream;
let rt: FakeOpenAiRealtime;
let explicit: TestGateway;
let fromEnv: TestGateway;
const client = (tg: TestGateway): OpenAI => new OpenAI({ apiKey: KEY, baseURL: `${tg.origin}/v1`, maxRetries: 0 });

before(async () => {
  proxy = await startFakeProxy();
  fake = await startFakeOpenAi(() => ({ events: chatEvents(["through ", "the ", "proxy"]) }));
  rt = await startFakeOpenAiRealtime();
  const port = new URL(fake.baseUrl).port;
  const rtPort = new URL(rt.baseUrl).port;
  const common = { routing: { maxAttempts: 1 }, auth: { keys: [{ key: KEY, name: "t" }] } };
  explicit = await startTestGateway({
    ...common,
    providers: {
      px: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["m"], proxy: proxy.url },
      pxrt: { type: "openai", baseUrl: `http://${NAMED}:${rtPort}/v1`, apiKey: "sk-up", proxy: proxy.url },
    },
    realtime: { profiles: { "voice/proxied": { upstream: "pxrt/gpt-realtime" } } },
  });
  // The environment is read when the providers are built: set it for this gateway's start only.
  fromEnv = await withEnv({ HTTP_PROXY: proxy.url, NO_PROXY: undefined }, () =>
    startTestGateway({
      ...common,
      providers: {
        named: { type: "openai", baseUrl: `http://${NAMED}:${port}/v1`, apiKey: "sk-up", models: ["m"] },
        loop: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["m"] },
        direct: { type: "openai", baseUrl: `http://${NAMED}:${port}/v1`, apiKey: "sk-up", models: ["m"], proxy: false },
      },
    }),
  );
});
after(async () => {
  await explicit.close();
  await fromEnv.close();
  await fake.close();
  await rt.close();
  await proxy.close();
});

async function chat(tg: TestGateway, model: string): Promise<string> {
  const stream = await client(tg).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
  return text;
}

describe("upstream proxy: a provider's proxy setting", () => {
  it("sends its HTTP calls through the proxy (absolute-form for http://), streamed and whole", async () => {
    const before = proxy.log.length;
    assert.equal(await chat(explicit, "px/m"), "through the proxy");
    const whole = await client(explicit).chat.completions.create({ model: "px/m", messages: [{ role: "user", content: "hi" }] });
    assert.equal(whole.choices[0]!.message.content, "through the proxy");
    const seen = proxy.log.slice(before);
    assert.deepEqual(seen, [`POST ${fake.baseUrl}/chat/completions`, `POST ${fake.baseUrl}/chat/completions`]);
  });

  it("opens a realtime upstream WebSocket through a CONNECT tunnel (to a name only the proxy resolves)", async () => {
    const before = proxy.log.length;
    const c = await RealtimeTestClient.connect(realtimeUrl(explicit.origin, "voice/proxied"), { headers: { Authorization: `Bearer ${KEY}` } });
    await c.next("session.created");
    c.ws.close();
    assert.deepEqual(proxy.log.slice(before), [`CONNECT ${NAMED}:${new URL(rt.baseUrl).port}`]);
  });
});

describe("upstream proxy: the environment (HTTP_PROXY, NO_PROXY)", () => {
  it("a provider without a proxy setting follows HTTP_PROXY: a host only the proxy can resolve is reached through it", async () => {
    const before = proxy.log.length;
    assert.equal(await chat(fromEnv, "named/m"), "through the proxy");
    assert.deepEqual(proxy.log.slice(before), [`POST http://${NAMED}:${new URL(fake.baseUrl).port}/v1/chat/completions`]);
  });

  it("a loopback upstream is never sent to the environment's proxy", async () => {
    const before = proxy.log.length;
    const requests = fake.requests.length;
    assert.equal(await chat(fromEnv, "loop/m"), "through the proxy");
    assert.equal(fake.requests.length, requests + 1);
    assert.deepEqual(proxy.log.slice(before), []);
  });

  it("proxy: false goes direct whatever the environment says (here: a name DNS does not know, so 502)", async () => {
    const before = proxy.log.length;
    await assert.rejects(client(fromEnv).chat.completions.create({ model: "direct/m", messages: [{ role: "user", content: "hi" }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 502);
      return true;
    });
    assert.deepEqual(proxy.log.slice(before), []);
  });

  it("reads the variables in either case, upper first, and always adds the loopback hosts to NO_PROXY", () => {
    assert.deepEqual(envProxy({ https_proxy: "http://p:1", HTTP_PROXY: "http://q:2", no_proxy: "internal.example" }), {
      http: "http://q:2",
      https: "http://p:1",
      noProxy: "internal.example,localhost,127.0.0.1,[::1]",
    });
    assert.deepEqual(envProxy({}), { http: undefined, https: undefined, noProxy: "localhost,127.0.0.1,[::1]" });
  });

  it("NO_PROXY entries: *, hosts, domains with or without a leading dot, ports", () => {
    const no = "corp.example, .svc.local api.test:8443 [::1]";
    const cases: Array<[string, boolean]> = [
      ["wss://corp.example/x", true],
      ["wss://a.corp.example/x", true],
      ["wss://notcorp.example/x", false],
      ["ws://b.svc.local:9/x", true],
      ["wss://api.test:8443/x", true],
      ["wss://api.test/x", false],
      ["ws://[::1]:80/x", true],
      ["wss://api.deepgram.com/v1/listen", false],
    ];
    for (const [url, want] of cases) assert.equal(bypassesProxy(new URL(url), no), want, url);
    assert.equal(bypassesProxy(new URL("wss://anything.example"), "*"), true);
  });

  it("a proxy that is down is the upstream's failure: 502 streamed and whole, the gateway keeps serving", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { down: { type: "openai", baseUrl: fake.baseUrl, apiKey: "k", models: ["m"], proxy: `http://127.0.0.1:${deadPort}` } } });
    try {
      const c = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      for (const stream of [false, true]) {
        await assert.rejects(c.chat.completions.create({ model: "down/m", messages: [{ role: "user", content: "hi" }], stream }), (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.status, 502);
          return true;
        });
      }
      const ok = await c.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "still here" }] });
      assert.match(ok.choices[0]!.message.content ?? "", /still here/);
    } finally {
      await gw.close();
    }
  });

  it("rejects a proxy that is not a URL, naming the field", async () => {
    await assert.rejects(startTestGateway({ providers: { x: { type: "openai", baseUrl: fake.baseUrl, proxy: "not a url" } } }), /providers\.x\.proxy/);
  });
});

/** One provider type: a fake of its vendor, its config pointed at the fake, and one call through the gateway. */
interface ProviderRow {
  readonly type: string;
  start(): Promise<{ readonly origin: string; close(): Promise<void> }>;
  config(origin: string): Record<string, unknown>;
  call(client: OpenAI): Promise<void>;
  /** Parts of URLs that must be among the proxy's lines (every call the row makes, not just one). */
  readonly through?: readonly string[];
}

/** The Vertex row's service-account file (written when its fake starts). */
let vertexCredentials = "";

const chatOnce = (model: string) => async (c: OpenAI): Promise<void> => {
  const r = await c.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
  assert.equal(typeof r.choices[0]!.message.content, "string");
};
const originOf = (f: { baseUrl: string; close(): Promise<void> }): { origin: string; close(): Promise<void> } => ({ origin: new URL(f.baseUrl).origin, close: () => f.close() });
const SILENCE = Buffer.concat([wavHeader(16_000, 1, 3200), Buffer.alloc(3200)]);

const PROVIDERS: readonly ProviderRow[] = [
  { type: "openai", start: async () => originOf(await startFakeOpenAi(() => ({ events: chatEvents(["hi"]) }))), config: (o) => ({ type: "openai", baseUrl: `${o}/v1`, apiKey: "k", models: ["m"] }), call: chatOnce("up/m") },
  { type: "anthropic", start: async () => originOf(await startFakeAnthropic()), config: (o) => ({ type: "anthropic", baseUrl: o, apiKey: "k", models: ["claude-fake-1"] }), call: chatOnce("up/claude-fake-1") },
  { type: "gemini", start: async () => originOf(await startFakeGemini()), config: (o) => ({ type: "gemini", baseUrl: o, apiKey: "k", models: ["gemini-fake-1"] }), call: chatOnce("up/gemini-fake-1") },
  {
    // Vertex: the OAuth token fetch (google-auth-library's own HTTP client) goes through the proxy too.
    type: "gemini (vertex)",
    start: async () => {
      const f = await startFakeGemini();
      vertexCredentials = f.serviceAccountFile(f.tokenUrl);
      return originOf(f);
    },
    config: (o) => ({ type: "gemini", vertex: { project: "fake-project", location: "us-central1" }, baseUrl: o, credentialsFile: vertexCredentials, models: ["gemini-fake-1"] }),
    call: chatOnce("up/gemini-fake-1"),
    through: ["/token", "generateContent"],
  },
  {
    type: "bedrock",
    start: async () => originOf(await startFakeBedrock()),
    config: (o) => ({ type: "bedrock", region: "us-east-1", baseUrl: o, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", models: ["anthropic.claude-3-5-sonnet-20240620-v1:0"] }),
    call: chatOnce("up/anthropic.claude-3-5-sonnet-20240620-v1:0"),
  },
  {
    type: "azure",
    start: async () => {
      const f = await startFakeAzure();
      return { origin: new URL(f.endpoint).origin, close: () => f.close() };
    },
    config: (o) => ({ type: "azure", baseUrl: o, apiKey: "azure-key-1", apiVersion: "2024-10-21", models: ["gpt4o-prod"] }),
    call: chatOnce("up/gpt4o-prod"),
  },
  {
    type: "deepgram",
    start: async () => originOf(await startFakeDeepgram()),
    config: (o) => ({ type: "deepgram", baseUrl: o, apiKey: DEEPGRAM_KEY }),
    call: async (c) => {
      const r = await c.audio.transcriptions.create({ model: "up/nova-3", file: await toFile(SILENCE, "a.wav", { type: "audio/wav" }) });
      assert.equal(typeof r.text, "string");
    },
  },
  {
    type: "elevenlabs",
    start: async () => originOf(await startFakeElevenLabs()),
    config: (o) => ({ type: "elevenlabs", baseUrl: o, apiKey: ELEVENLABS_KEY, voices: { alloy: "21m00Tcm4TlvDq8ikWAM" } }),
    call: async (c) => {
      const r = await c.audio.speech.create({ model: "up/eleven_flash_v2_5", input: "Hello.", voice: "alloy", response_format: "pcm" });
      assert.ok((await r.arrayBuffer()).byteLength > 0);
    },
  },
];

describe("upstream proxy: every provider type sends through its proxy setting", () => {
  for (const p of PROVIDERS) {
    it(`${p.type}: the call reaches its fake through the proxy`, async () => {
      const fakeUp = await p.start();
      const gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { up: { ...p.config(fakeUp.origin), proxy: proxy.url } } });
      try {
        const before = proxy.log.length;
        await p.call(new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 }));
        const seen = proxy.log.slice(before);
        assert.ok(seen.length > 0, "the proxy carried the call");
        assert.ok(seen.every((l) => l.includes(fakeUp.origin)), seen.join("\n"));
        for (const part of p.through ?? []) assert.ok(seen.some((l) => l.includes(part)), `${part} went through the proxy:\n${seen.join("\n")}`);
      } finally {
        await gw.close();
        await fakeUp.close();
      }
    });
  }
});
