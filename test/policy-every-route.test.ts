/**
 * One policy, every route and door: gateway-key authentication and the
 * engine's admission (model allow-list, requests/min) run over every route
 * the HTTP door serves (taken from its route table, so a route added later
 * falls under this test by itself) and every RPC of the gRPC service (taken
 * from the service definition; an RPC without a way to call it here fails).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import WebSocket from "ws";
import { ROUTES } from "../src/doors/http/routes/index.js";
import { OVERLOADED } from "../src/engine/adaptive-limit.js";
import { SpillwayServiceService, type SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient, synthesizeRequest, transcribeConfig } from "./helpers/grpc.js";
import { realtimeUrl, RealtimeTestClient } from "./helpers/realtime.js";

/** Tries a realtime upgrade: the HTTP status it was refused with, or 101 when it opened. */
function upgradeStatus(url: string, key: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
    ws.once("open", () => {
      ws.terminate();
      resolve(101);
    });
    ws.once("unexpected-response", (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once("error", (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

/** The body of a refused realtime upgrade. */
function upgradeBody(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => {
      ws.terminate();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    ws.once("error", (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

const KEYS = [
  { key: "sk-policy-full-1", name: "full" },
  { key: "sk-policy-openai-2", name: "openai-only", models: ["openai/*"] },
  { key: "sk-policy-rpm-3", name: "rpm1", rpm: 1 },
];

/** What a route or RPC answered, as the policy cares: an HTTP status or a gRPC code. */
type Answer = number;

const HTTP_CASES: Array<{ name: string; key: string | undefined; expect: number; engineOnly: boolean }> = [
  { name: "no key → 401", key: undefined, expect: 401, engineOnly: false },
  { name: "a wrong key → 401", key: "sk-policy-wrong-9", expect: 401, engineOnly: false },
  { name: "a model outside the key's list → 403", key: "sk-policy-openai-2", expect: 403, engineOnly: true },
];

describe("one policy over every route and door", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ auth: { keys: KEYS } });
  });
  after(() => gw.close());

  const routes = ROUTES.filter((r) => !r.public);

  it("every POST route has an example request (so it can be held to the policy)", () => {
    // Routes on one stored object (`/v1/responses/:id/cancel`) open no engine stream.
    const missing = routes.filter((r) => r.method === "post" && !r.example && !r.pattern.includes(":")).map((r) => r.pattern);
    assert.deepEqual(missing, []);
  });

  async function send(route: (typeof routes)[number], key: string | undefined): Promise<Response> {
    const ex = route.example?.();
    const headers: Record<string, string> = {};
    if (key) {
      headers["authorization"] = `Bearer ${key}`;
      headers["x-api-key"] = key;
    }
    if (ex) headers["content-type"] = ex.contentType;
    const url = `${gw.origin}${route.pattern.replace("*", "local/echo")}`;
    return fetch(url, { method: route.method.toUpperCase(), headers, ...(ex ? { body: ex.body } : {}) });
  }

  for (const route of routes) {
    for (const c of HTTP_CASES) {
      if (c.engineOnly && !route.example) continue;
      it(`HTTP ${route.method.toUpperCase()} ${route.pattern}: ${c.name} (in the route's shape)`, async () => {
        const res = await send(route, c.key);
        assert.equal(res.status, c.expect, await res.clone().text());
        // A refusal trying again cannot fix: the SDKs (and Claude Code, which retries a 401) are told not to.
        assert.equal(res.headers.get("x-should-retry"), "false");
        const body = (await res.json()) as { error?: unknown; type?: string };
        assert.ok(body.error, "an error body in the route's shape");
      });
    }
    it(`HTTP ${route.method.toUpperCase()} ${route.pattern}: a valid key is served`, async () => {
      const res = await send(route, "sk-policy-full-1");
      // A route on one stored object is served past the policy: the id in the pattern is unknown (404).
      assert.equal(res.status, route.pattern.includes(":") ? 404 : 200, await res.clone().text());
      assert.equal(res.headers.get("x-request-id")?.length ? true : false, true);
      if (route.example) assert.equal(res.headers.get("x-spillway-model"), route.example().model, "x-spillway-* headers on every engine route");
      await res.arrayBuffer();
    });
    if (route.example) {
      it(`HTTP ${route.method.toUpperCase()} ${route.pattern}: over the key's requests/min → 429 with Retry-After`, async () => {
        // The rpm key's first request of this route may pass (or fail for another reason); the next is over the rate.
        let res = await send(route, "sk-policy-rpm-3");
        for (let i = 0; i < 3 && res.status !== 429; i++) {
          await res.arrayBuffer();
          res = await send(route, "sk-policy-rpm-3");
        }
        assert.equal(res.status, 429);
        assert.ok(Number(res.headers.get("retry-after")) >= 1);
        assert.equal(res.headers.get("x-should-retry"), null, "a 429 may be tried again");
        await res.arrayBuffer();
      });
    }
  }

  // gRPC: one way to call each RPC of the service; a new RPC fails until added here.
  type Call = (client: SpillwayServiceClient, md: Metadata) => Promise<Answer>;
  const code = (p: Promise<unknown>): Promise<Answer> =>
    p.then(
      () => status.OK,
      (e: ServiceError) => e.code,
    );
  const streamCode = async (s: ReturnType<SpillwayServiceClient["generate"]>): Promise<Answer> => {
    const r = await readAll(s);
    return r.error?.code ?? status.OK;
  };
  const RPCS: Record<string, { call: Call; engine: boolean }> = {
    generate: { engine: true, call: (c, md) => streamCode(c.generate(generateRequest("local/echo"), md)) },
    synthesize: { engine: true, call: (c, md) => streamCode(c.synthesize(synthesizeRequest("local/tts", "hi"), md)) },
    transcribe: {
      engine: true,
      call: (c, md) => {
        const s = c.transcribe(md);
        s.write({ input: { $case: "config", value: transcribeConfig("local/stt", 16000) } });
        s.write({ input: { $case: "audio", value: Buffer.alloc(3200) } });
        s.end();
        return streamCode(s);
      },
    },
    attach: { engine: false, call: (c, md) => streamCode(c.attach({ streamId: "0".repeat(32) }, md)) },
    listModels: {
      engine: false,
      call: (c, md) => code(new Promise((resolve, reject) => c.listModels({}, md, (e, r) => (e ? reject(e) : resolve(r))))),
    },
  };

  it("every RPC of the service has a way to be called here", () => {
    assert.deepEqual(Object.keys(SpillwayServiceService).sort(), Object.keys(RPCS).sort());
  });

  // The realtime door: the upgrade is where a session is admitted, each response an engine call.
  it("WebSocket /v1/realtime: no key / wrong key → 401, a profile outside the key's list → 403, a valid key opens; over the rate → an error event", async () => {
    const url = realtimeUrl(gw.origin);
    assert.equal(await upgradeStatus(url, undefined), 401);
    assert.equal(await upgradeStatus(url, "sk-policy-wrong-9"), 401);
    assert.equal(await upgradeStatus(url, "sk-policy-openai-2"), 403);
    assert.equal(await upgradeStatus(url, "sk-policy-full-1"), 101);
    // The rpm key is spent by the HTTP and gRPC cases: a response is refused in-band.
    const c = await RealtimeTestClient.connect(url, { headers: { authorization: "Bearer sk-policy-rpm-3" } });
    try {
      await c.next("session.created");
      c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] } });
      c.send({ type: "response.create", response: { output_modalities: ["text"] } });
      const err = await c.next("error");
      assert.match(JSON.stringify(err), /rate_limit_exceeded|Rate limit/);
    } finally {
      await c.close();
    }
  });

  const md = (key: string | undefined): Metadata => {
    const m = new Metadata();
    if (key) m.set("authorization", `Bearer ${key}`);
    return m;
  };
  for (const [name, rpc] of Object.entries(RPCS)) {
    it(`gRPC ${name}: no key / wrong key → UNAUTHENTICATED; outside the list → PERMISSION_DENIED; over the rate → RESOURCE_EXHAUSTED`, async () => {
      const client = spillwayClient(gw.grpcAddress!);
      try {
        assert.equal(await rpc.call(client, md(undefined)), status.UNAUTHENTICATED);
        assert.equal(await rpc.call(client, md("sk-policy-wrong-9")), status.UNAUTHENTICATED);
        if (!rpc.engine) return;
        assert.equal(await rpc.call(client, md("sk-policy-openai-2")), status.PERMISSION_DENIED);
        let got = await rpc.call(client, md("sk-policy-rpm-3"));
        for (let i = 0; i < 3 && got !== status.RESOURCE_EXHAUSTED; i++) got = await rpc.call(client, md("sk-policy-rpm-3"));
        assert.equal(got, status.RESOURCE_EXHAUSTED);
      } finally {
        client.close();
      }
    });
  }
});

// Past capacity: one early check (admission.enter) on every route that opens engine streams, every
// route on a stored object that follows the durable log (found by what it answers, not by a list),
// every streaming RPC and the realtime upgrade (cascade and relayed profiles), before any body is
// read or request decoded. The process's stream cap makes the refusal certain without timing: one
// slow stream fills it.
describe("past capacity, every engine route and door refuses first (503 + Retry-After, UNAVAILABLE)", () => {
  const RELAYED = "openai/gpt-realtime";
  let gw: TestGateway;
  let slow: AbortController;
  let storedId = "";
  before(async () => {
    gw = await startTestGateway({
      limits: { maxConcurrentStreams: 1 },
      providers: { local: { type: "local", tokenDelayMs: 100 }, openai: { type: "openai", baseUrl: "http://127.0.0.1:1/v1", apiKey: "sk-never-dialled" } },
      realtime: { profiles: { [RELAYED]: { upstream: RELAYED } } },
    });
    // A stored response, finished before the slot is filled: the routes on one stored object are tried on it.
    const created = await fetch(`${gw.baseUrl}/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "local/echo", input: "kept", background: true }) });
    storedId = ((await created.json()) as { id: string }).id;
    for (let i = 0; i < 400; i++) {
      const r = (await (await fetch(`${gw.baseUrl}/responses/${storedId}`)).json()) as { status: string };
      if (r.status === "completed") break;
      await new Promise((res) => setTimeout(res, 25));
    }
    slow = new AbortController();
    const words = Array.from({ length: 600 }, (_, i) => `s${i}`).join(" ");
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: words }], stream: true }),
      signal: slow.signal,
    });
    assert.equal(res.status, 200);
    // Read on in the background: the stream holds the one slot until `slow` aborts it.
    void res.text().catch(() => undefined);
  });
  after(async () => {
    slow.abort();
    await gw.close();
  });

  for (const route of ROUTES.filter((r) => !r.public && r.example)) {
    it(`HTTP ${route.method.toUpperCase()} ${route.pattern}: 503 (the shape's overload status) + Retry-After before the body is read (a wrong Content-Type is not reached)`, async () => {
      if (gw.gateway.engine.admission.openStreams < 1) return assert.fail("the slow stream ended early");
      const res = await fetch(`${gw.origin}${route.pattern.replace("*", "local/echo")}`, { method: "POST", headers: { "content-type": "text/x-not-json" }, body: "not read" });
      // 503, or the shape's own status for overload (Anthropic's is 529 `overloaded_error`).
      assert.equal(res.status, route.shape.renderError(OVERLOADED).status, await res.clone().text());
      assert.ok([503, 529].includes(res.status));
      assert.equal(res.headers.get("retry-after"), "1");
      assert.equal(res.headers.get("x-should-retry"), null, "an overload refusal may be tried again");
      const body = (await res.json()) as { error?: { message?: string } };
      assert.ok(body.error, "an error body in the route's shape");
      assert.match(body.error.message ?? "", /limits\.maxConcurrentStreams/, "the real reason: the stream cap");
    });
  }

  // Routes on one stored object that stream from the durable log (replay, then follow) do a
  // stream's work without opening an engine stream: each must declare `follows` and is refused the
  // same way. Any such route that answers with an event stream here (past capacity) fails.
  const onStored = ROUTES.filter((r) => !r.public && r.method === "get" && r.pattern.includes(":"));
  it("the route table has routes that follow the durable log (this check is not empty)", () => {
    assert.ok(onStored.some((r) => r.follows?.query), onStored.map((r) => r.pattern).join(", "));
  });
  for (const route of onStored) {
    const query = route.follows?.query ?? "stream=true";
    it(`HTTP GET ${route.pattern}?${query} on a stored response: ${route.follows ? "503 + Retry-After before the lookup" : "no event stream (it follows nothing)"}`, async () => {
      if (gw.gateway.engine.admission.openStreams < 1) return assert.fail("the slow stream ended early");
      const url = `${gw.origin}${route.pattern.replace(/:[a-z_]+/g, storedId)}?${query}`;
      const res = await fetch(url);
      assert.doesNotMatch(res.headers.get("content-type") ?? "", /event-stream/, `${route.pattern} streams from the log past capacity: give it \`follows\` (route.ts)`);
      if (!route.follows) return void (await res.arrayBuffer());
      assert.equal(res.status, route.shape.renderError(OVERLOADED).status, await res.clone().text());
      assert.equal(res.headers.get("retry-after"), "1");
      assert.ok(((await res.json()) as { error?: unknown }).error, "an error body in the route's shape");
      // Refused before the lookup: an unknown id gets the same answer, not a 404.
      const unknown = await fetch(`${gw.origin}${route.pattern.replace(/:[a-z_]+/g, "resp_" + "0".repeat(32))}?${query}`);
      assert.equal(unknown.status, res.status);
      await unknown.arrayBuffer();
    });
  }

  it("gRPC generate / synthesize / transcribe: UNAVAILABLE before the request is validated; realtime upgrade: 503 + Retry-After", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const invalid = generateRequest("");
      assert.equal((await readAll(client.generate(invalid))).error?.code, status.UNAVAILABLE, "not INVALID_ARGUMENT: refused first");
      assert.equal((await readAll(client.synthesize(synthesizeRequest("local/tts", "hi")))).error?.code, status.UNAVAILABLE);
      const s = client.transcribe(new Metadata());
      s.end();
      assert.equal((await readAll(s)).error?.code, status.UNAVAILABLE, "not INVALID_ARGUMENT (no config): refused first");
    } finally {
      client.close();
    }
    assert.equal(await upgradeStatus(realtimeUrl(gw.origin), undefined), 503);
    // A profile relayed to an upstream model too: refused at the upgrade, nothing dialled.
    assert.equal(await upgradeStatus(realtimeUrl(gw.origin, RELAYED), undefined), 503);
    assert.match(await upgradeBody(realtimeUrl(gw.origin)), /limits\.maxConcurrentStreams/, "the upgrade says the real reason");
  });

  it("once the slot is free, the same requests are served", async () => {
    slow.abort();
    for (let i = 0; i < 200 && gw.gateway.engine.admission.openStreams > 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(gw.gateway.engine.admission.openStreams, 0);
    const route = ROUTES.find((r) => r.pattern === "/v1/chat/completions")!;
    const ex = route.example!();
    const res = await fetch(`${gw.origin}${route.pattern}`, { method: "POST", headers: { "content-type": ex.contentType }, body: ex.body });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
    const client = spillwayClient(gw.grpcAddress!);
    try {
      assert.equal((await readAll(client.generate(generateRequest("local/echo")))).error, undefined);
    } finally {
      client.close();
    }
    assert.equal(await upgradeStatus(realtimeUrl(gw.origin), undefined), 101);
    const replay = await fetch(`${gw.baseUrl}/responses/${storedId}?stream=true`);
    assert.equal(replay.status, 200);
    assert.match(await replay.text(), /response\.completed/, "a follower is served again");
  });
});

// The realtime session cap (`limits.maxRealtimeSessions`) bounds sessions, not streams: while it is
// full the upgrade is refused (cascade and relayed profiles) with its own reason, and every route
// of the table and every streaming RPC is still served — a route added later is held to it here.
describe("the realtime session cap refuses only upgrades, on every route and door", () => {
  const RELAYED = "openai/gpt-realtime";
  let gw: TestGateway;
  let session: RealtimeTestClient;
  before(async () => {
    gw = await startTestGateway({
      limits: { maxRealtimeSessions: 1 },
      providers: { openai: { type: "openai", baseUrl: "http://127.0.0.1:1/v1", apiKey: "sk-never-dialled" } },
      realtime: { profiles: { [RELAYED]: { upstream: RELAYED } } },
    });
    session = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    await session.next("session.created");
  });
  after(async () => {
    await session.close();
    await gw.close();
  });

  for (const route of ROUTES.filter((r) => !r.public && r.example)) {
    it(`HTTP ${route.method.toUpperCase()} ${route.pattern}: served while the session cap is full`, async () => {
      assert.equal(gw.gateway.engine.admission.openSessions, 1);
      const ex = route.example!();
      const res = await fetch(`${gw.origin}${route.pattern.replace("*", "local/echo")}`, { method: "POST", headers: { "content-type": ex.contentType }, body: ex.body });
      assert.equal(res.status, 200, await res.clone().text());
      await res.arrayBuffer();
    });
  }

  it("gRPC streams are served; the upgrade (cascade and relayed) is refused with 503 + Retry-After naming limits.maxRealtimeSessions", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    try {
      assert.equal((await readAll(client.generate(generateRequest("local/echo")))).error, undefined);
      assert.equal((await readAll(client.synthesize(synthesizeRequest("local/tts", "hi")))).error?.code ?? status.OK, status.OK);
    } finally {
      client.close();
    }
    assert.equal(await upgradeStatus(realtimeUrl(gw.origin), undefined), 503);
    assert.equal(await upgradeStatus(realtimeUrl(gw.origin, RELAYED), undefined), 503);
    const body = JSON.parse(await upgradeBody(realtimeUrl(gw.origin))) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "server_overloaded");
    assert.match(body.error.message, /limits\.maxRealtimeSessions/);
  });
});
