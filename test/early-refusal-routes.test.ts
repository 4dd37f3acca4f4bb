/**
 * The early check (`Admission.enter`) on the requests that do a stream's work
 * without opening an engine stream of their own, and on the realtime
 * upstream relay (issue 16): each is refused past capacity the way its door
 * refuses everything else, and holds exactly one slot while it works, freed
 * once however it ends.
 *
 * How "one slot" is shown without timing: the adaptive limit is pinned
 * (`minLimit` = `maxLimit` = N: it starts at N and can go neither way). With
 * `minLimit` N, a request that held no slot would let one more in, one that
 * held two would be refused itself, and a slot freed twice would let one
 * more in afterwards.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { AdaptiveLimit, OVERLOADED } from "../src/engine/adaptive-limit.js";
import { Admission } from "../src/engine/admission.js";
import { startFakeOpenAiRealtime, type FakeOpenAiRealtime } from "./helpers/fake-openai-realtime.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { until } from "./helpers/saturate.js";
import { postJson } from "./helpers/sse.js";

const WORDS = (n: number): string => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

/** Waits until the gateway's adaptive limit is pinned at `n` (`spillway_concurrency_limit`). */
async function pinned(gw: TestGateway, n: number): Promise<void> {
  await until(async () => {
    const text = await (await fetch(`${gw.origin}/metrics`)).text();
    return new RegExp(`^spillway_concurrency_limit ${n}$`, "m").test(text);
  }, `the adaptive limit pinned at ${n}`);
}

/** A short non-streamed chat request: its status (200 when a slot was free, 503 when not). */
async function chatStatus(gw: TestGateway): Promise<number> {
  const r = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
  await r.arrayBuffer();
  return r.status;
}

/** A slow chat stream that holds one slot until `stop()`; resolves once its head arrived (200). */
async function slowStream(gw: TestGateway, words = 600): Promise<{ stop: () => void }> {
  const ac = new AbortController();
  const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: WORDS(words) }], stream: true }, { signal: ac.signal });
  if (res.status !== 200) assert.fail(`the slow stream was refused: ${res.status} ${await res.text()}`);
  void res.text().catch(() => undefined);
  return { stop: () => ac.abort() };
}

/** GET /v1/responses/{id}?stream=true: the response, with the client's abort controller. */
async function follow(gw: TestGateway, id: string): Promise<{ res: Response; ac: AbortController }> {
  const ac = new AbortController();
  const res = await fetch(`${gw.baseUrl}/responses/${id}?stream=true`, { signal: ac.signal });
  return { res, ac };
}

/** Reads a response body until `text` appears in it. */
async function readUntil(res: Response, text: string): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let got = "";
  while (!got.includes(text)) {
    const { value, done } = await reader.read();
    if (done) assert.fail(`the body ended before '${text}': ${got.slice(-300)}`);
    got += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
}

/** A WebSocket upgrade request: the status and Retry-After it was answered with (101 when it opened). */
function upgrade(gw: TestGateway, path: string): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.origin}${path}`, {
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

async function assertOverloaded(res: Response): Promise<void> {
  assert.equal(res.status, 503, await res.clone().text());
  assert.equal(res.headers.get("retry-after"), "1");
  const body = (await res.json()) as { error: { code: string; type: string } };
  assert.equal(body.error.code, "server_overloaded");
}

describe("Admission.hold (unit): a follower's slot", () => {
  it("keeps a ticket that holds its slot; a spent one waits in the queue for a slot, or gets the shared refusal", async () => {
    const limit = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 60_000, sampleMs: 60_000 });
    const admission = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
    try {
      const first = admission.enter();
      assert.equal(await admission.hold(first), first, "a ticket that holds its place is kept");
      limit.update(500);
      limit.update(500);
      assert.equal(limit.limit, 1);
      const spent = admission.enter();
      assert.equal(spent.holding, false);
      const waiting = admission.hold(spent);
      first.release();
      const held = await waiting;
      assert.equal(held.holding, true);
      assert.equal(limit.inflight, 1, "woken with the freed slot");
      held.release();
      held.release();
      assert.equal(limit.inflight, 0, "freed once");
    } finally {
      limit.stop();
    }
    const short = new AdaptiveLimit({ targetDelayMs: 100, minLimit: 1, queueMs: 1, sampleMs: 60_000 });
    const a2 = new Admission([], { maxConcurrentStreams: 10, concurrency: short });
    try {
      const busy = a2.enter();
      short.update(500);
      short.update(500);
      await assert.rejects(a2.hold(a2.enter()), (e: unknown) => e === OVERLOADED);
      busy.release();
      assert.equal(short.inflight, 0);
    } finally {
      short.stop();
    }
  });
});

describe("HTTP: followers of the durable log and count_tokens hold one slot, behind the early check", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { local: { type: "local", tokenDelayMs: 20 } },
      limits: { adaptiveConcurrency: { targetDelayMs: 0.001, minLimit: 2, maxLimit: 2, queueMs: 0 } },
    });
    await pinned(gw, 2);
  });
  after(() => gw.close());

  it("count_tokens takes one slot, not two (with one of two held, it is served)", async () => {
    const held = await slowStream(gw);
    try {
      const res = await postJson(`${gw.origin}/v1/messages/count_tokens`, { model: "local/echo", messages: [{ role: "user", content: "hello there" }] });
      assert.equal(res.status, 200, await res.clone().text());
      assert.ok(((await res.json()) as { input_tokens: number }).input_tokens > 0);
      // Its slot was freed: two requests fit again beside the held stream? One does, the limit is two.
      assert.equal(await chatStatus(gw), 200);
      const second = await slowStream(gw);
      try {
        // Both slots held: count_tokens is refused before its body is read, in Anthropic's form.
        const refused = await fetch(`${gw.origin}/v1/messages/count_tokens`, { method: "POST", headers: { "content-type": "text/x-not-read" }, body: "x" });
        assert.equal(refused.status, 529, await refused.clone().text());
        assert.equal(refused.headers.get("retry-after"), "1");
        assert.equal(((await refused.json()) as { error: { type: string } }).error.type, "overloaded_error");
      } finally {
        second.stop();
      }
    } finally {
      held.stop();
    }
    await until(async () => gw.gateway.engine.admission.openStreams === 0, "the slow streams ended");
  });

  it("GET /v1/responses/{id}?stream=true: one slot while it follows, freed when its client leaves and when the response ends; past capacity 503 + Retry-After before the lookup, while a plain GET is served", async () => {
    const created = await postJson(`${gw.baseUrl}/responses`, { model: "local/echo", input: WORDS(2000), background: true });
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = (await created.json()) as { id: string };
    // The background generation holds one slot, the follower the other.
    const f1 = await follow(gw, id);
    assert.equal(f1.res.status, 200);
    assert.match(f1.res.headers.get("content-type") ?? "", /^text\/event-stream/);
    await readUntil(f1.res, "response.output_text.delta");
    assert.equal(await chatStatus(gw), 503, "the follower holds a slot (else this would fit)");
    await assertOverloaded((await follow(gw, id)).res);
    await assertOverloaded((await follow(gw, "resp_" + "0".repeat(32))).res);
    const plain = await fetch(`${gw.baseUrl}/responses/${id}`);
    assert.equal(plain.status, 200, "reading a stored response is not a stream: served");
    assert.equal(((await plain.json()) as { status: string }).status, "in_progress");
    // The client leaves: its slot is freed (once: after it, exactly one more request fits).
    f1.ac.abort();
    await until(async () => (await chatStatus(gw)) === 200, "the follower's slot freed");
    const held = await slowStream(gw);
    assert.equal(await chatStatus(gw), 503, "freed once: the generation and one stream fill the limit");
    held.stop();
    await until(async () => (await chatStatus(gw)) === 200, "the held stream's slot freed");
    // A follower to the end: cancelling the response ends it, and both slots are freed.
    const f2 = await follow(gw, id);
    assert.equal(f2.res.status, 200);
    const body = f2.res.text();
    const cancel = await fetch(`${gw.baseUrl}/responses/${id}/cancel`, { method: "POST" });
    assert.equal(cancel.status, 200, await cancel.clone().text());
    assert.match(await body, /"status":"cancelled"/);
    await until(async () => gw.gateway.engine.admission.openStreams === 0, "the generation ended");
    const a = await slowStream(gw);
    const b = await slowStream(gw);
    assert.equal(await chatStatus(gw), 503, "two streams fill the limit: nothing was freed twice");
    a.stop();
    b.stop();
    await until(async () => (await chatStatus(gw)) === 200, "served again");
    // A finished response replays in full through a follower.
    const f3 = await follow(gw, id);
    assert.equal(f3.res.status, 200);
    assert.match(await f3.res.text(), /response\.incomplete/);
  });

  it("a resumed chat stream (Last-Event-ID) holds one slot while it follows, freed when its client leaves", async () => {
    const first = new AbortController();
    const res = await postJson(
      `${gw.baseUrl}/chat/completions`,
      { model: "local/echo", messages: [{ role: "user", content: WORDS(200) }], stream: true },
      { headers: { "x-spillway-resumable": "true" }, signal: first.signal },
    );
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let got = "";
    while (!/^id: [0-9a-f]{32}:\d+$/m.test(got)) got += new TextDecoder().decode((await reader.read()).value);
    const lastId = /^id: ([0-9a-f]{32}:\d+)$/m.exec(got)![1]!;
    // The generation (detached) holds one slot; its first client follows within it. A resume takes the second.
    const resume = new AbortController();
    const again = await fetch(`${gw.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "last-event-id": lastId }, body: "{}", signal: resume.signal });
    assert.equal(again.status, 200);
    await readUntil(again, "id: ");
    assert.equal(await chatStatus(gw), 503, "the resume holds a slot");
    resume.abort();
    await until(async () => (await chatStatus(gw)) === 200, "the resume's slot freed when its client left");
    first.abort();
    // The generation runs on detached (~4 s: 200 tokens at 20 ms; long enough that the resume below joins it while it runs): wait for its end, then both slots are free.
    for (let i = 0; i < 600 && gw.gateway.engine.admission.openStreams > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.gateway.engine.admission.openStreams, 0, "the detached generation ended");
    const a = await slowStream(gw);
    const b = await slowStream(gw);
    assert.equal(await chatStatus(gw), 503, "two streams fill the limit: nothing was freed twice");
    a.stop();
    b.stop();
    await until(async () => (await chatStatus(gw)) === 200, "served again");
  });
});

describe("the realtime upstream relay: each upstream response is checked early and holds one slot", () => {
  const MODEL = "openai/gpt-realtime";
  let fake: FakeOpenAiRealtime;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeOpenAiRealtime({ deltas: 2, deltaDelayMs: 5 });
    gw = await startTestGateway({
      providers: { local: { type: "local", tokenDelayMs: 20 }, openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream" } },
      realtime: { profiles: { [MODEL]: { upstream: MODEL } } },
      limits: { adaptiveConcurrency: { targetDelayMs: 0.001, minLimit: 1, maxLimit: 1, queueMs: 0 } },
    });
    await pinned(gw, 1);
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  async function session(): Promise<{ c: RealtimeTestClient; conn: Awaited<ReturnType<FakeOpenAiRealtime["nextConnection"]>> }> {
    const next = fake.nextConnection();
    const c = await RealtimeTestClient.connect(realtimeUrl(gw.origin, MODEL));
    const conn = await next;
    await c.next("session.created");
    return { c, conn };
  }

  /** The one slot is free, and only one: a held stream fills it (nothing was freed twice). */
  async function oneSlotFree(): Promise<void> {
    await until(async () => (await chatStatus(gw)) === 200, "the slot freed");
    const held = await slowStream(gw);
    assert.equal(await chatStatus(gw), 503, "one slot only: nothing was freed twice");
    held.stop();
    await until(async () => (await chatStatus(gw)) === 200, "the held stream's slot freed");
  }

  it("past capacity: response.create is not sent upstream (error server_overloaded, close 1013); a response the upstream starts itself is cancelled there and closes the same way; the upgrade gets 503", async () => {
    const a = await session();
    const b = await session();
    // Below capacity a relayed response is served, and its slot is freed at response.done.
    a.c.send({ type: "response.create" });
    assert.equal((await a.c.next("response.done")).response.status, "completed");
    await oneSlotFree();
    const held = await slowStream(gw);
    try {
      const sent = a.conn.events.filter((e) => e["type"] === "response.create").length;
      a.c.send({ type: "response.create", event_id: "evt_over" });
      const err = await a.c.next("error");
      assert.equal(err.error.code, "server_overloaded");
      assert.equal(err.error.event_id, "evt_over");
      assert.equal((await a.c.closed).code, 1013);
      assert.equal(a.conn.events.filter((e) => e["type"] === "response.create").length, sent, "not forwarded upstream");
      await a.conn.closed;
      // The upstream starts a response on its own (its turn detection): admitted at response.created, refused there.
      b.conn.socket.send(JSON.stringify({ type: "response.created", event_id: "evt_up", response: { id: "resp_vad", object: "realtime.response", status: "in_progress", output: [] } }));
      const err2 = await b.c.next("error", (e) => e.error?.code === "server_overloaded");
      assert.equal(err2.error.type, "server_error");
      assert.equal((await b.c.closed).code, 1013);
      await until(async () => b.conn.events.some((e) => e["type"] === "response.cancel" && e["response_id"] === "resp_vad"), "the response cancelled upstream");
      const up = await upgrade(gw, `/v1/realtime?model=${encodeURIComponent(MODEL)}`);
      assert.deepEqual(up, { status: 503, retryAfter: "1" }, "the upgrade to a relayed profile is refused: no upstream is dialled");
    } finally {
      held.stop();
    }
    await oneSlotFree();
    const upgrades = fake.upgrades.length;
    const c = await session();
    assert.equal(fake.upgrades.length, upgrades + 1);
    c.c.send({ type: "response.create" });
    assert.equal((await c.c.next("response.done")).response.status, "completed", "served again");
    await c.c.close();
  });

  it("a relayed response's slot is freed once, whatever ends it: cancel, the client leaving, the upstream closing mid-response", async () => {
    fake.behaviour = { deltas: 200, deltaDelayMs: 20 };
    // Cancel.
    const a = await session();
    a.c.send({ type: "response.create" });
    await a.c.next("response.output_audio.delta");
    assert.equal(await chatStatus(gw), 503, "the running response holds the slot");
    a.c.send({ type: "response.cancel" });
    assert.equal((await a.c.next("response.done")).response.status, "cancelled");
    await oneSlotFree();
    await a.c.close();
    // The client leaving mid-response.
    const b = await session();
    b.c.send({ type: "response.create" });
    await b.c.next("response.output_audio.delta");
    await b.c.close();
    await b.conn.closed;
    await oneSlotFree();
    // The upstream closing mid-response.
    fake.behaviour = { deltas: 200, deltaDelayMs: 20, closeMidStream: { afterDeltas: 2, code: 1011 } };
    const c = await session();
    c.c.send({ type: "response.create" });
    assert.equal((await c.c.closed).code, 1011);
    await oneSlotFree();
    fake.behaviour = { deltas: 2, deltaDelayMs: 5 };
  });
});
