/**
 * The realtime upgrade reserves one admission slot for the session's first
 * response (`Admission.openReservedSession`, `RealtimeSession`): the first
 * response is served on it even when the limit is otherwise full, a second
 * upgrade is refused (503 + Retry-After) while the only slot is reserved,
 * the reservation goes back on `input_audio_buffer.clear`, on close, after
 * its timer and for a transcription session, and the stream cap still
 * holds. The adaptive limit is pinned (minLimit = maxLimit), so nothing
 * here depends on timing; the timer's length is an option.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdaptiveLimit } from "../src/engine/adaptive-limit.js";
import { Admission } from "../src/engine/admission.js";
import { renderUpgradeRefusal } from "../src/doors/ws/upgrade-refusal.js";
import { OVERLOADED } from "../src/engine/adaptive-limit.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { rawUpgrade } from "./helpers/realtime-upgrade.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { until } from "./helpers/saturate.js";
import { postJson } from "./helpers/sse.js";

/** The adaptive limit pinned at `n` slots. */
const pinned = (n: number): Record<string, unknown> => ({ adaptiveConcurrency: { targetDelayMs: 1000, minLimit: n, maxLimit: n, queueMs: 0 } });
const slots = (gw: TestGateway): number => gw.gateway.engine.admission.slotsHeld;
const freed = (gw: TestGateway, what: string): Promise<void> => until(() => Promise.resolve(slots(gw) === 0), what);
const ask = (rt: RealtimeTestClient, text: string): void => {
  rt.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  rt.send({ type: "response.create", response: { output_modalities: ["text"] } });
};

describe("Admission.openReservedSession", () => {
  it("takes one slot with the session, refuses as openSession does, and the first stream takes the slot over", async () => {
    const limit = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 1, maxLimit: 1, queueMs: 0, sampler: "manual" });
    const admission = new Admission([], { maxConcurrentStreams: 10, concurrency: limit });
    const s = admission.openReservedSession();
    assert.equal(admission.slotsHeld, 1);
    assert.equal(admission.refusal(), OVERLOADED, "the limit is full for anyone else");
    assert.equal(admission.refusal(s.reservation), undefined, "the reserved first response is not refused");
    assert.throws(() => admission.openReservedSession(), (e: unknown) => e === OVERLOADED);
    assert.equal(admission.openSessions, 1, "the refused one opened nothing");
    const lease = await admission.admit(undefined, ["m"], s.reservation);
    assert.equal(admission.slotsHeld, 1, "taken over, not taken twice");
    s.reservation.release();
    assert.equal(admission.slotsHeld, 1, "a taken reservation's release is a no-op");
    lease.release(0);
    assert.equal(admission.slotsHeld, 0);
    s.end();
    assert.equal(admission.openSessions, 0);
  });

  it("the shared refusals are rendered once, with the HTTP door's body and Retry-After", () => {
    const a = renderUpgradeRefusal(OVERLOADED);
    assert.equal(renderUpgradeRefusal(OVERLOADED), a, "cached");
    assert.equal(a.status, "503 Service Unavailable");
    assert.deepEqual(a.headers.find(([n]) => n === "retry-after"), ["retry-after", "1"]);
    assert.equal(JSON.parse(a.body.toString("utf8")).error.code, "server_overloaded");
  });
});

describe("the realtime upgrade reserves the first response's slot", () => {
  it("the first response is served on the reservation while the limit is otherwise full; a second upgrade is refused with 503", async () => {
    const gw = await startTestGateway({ limits: pinned(1) }, { realtimeSetupReservationMs: 600_000 });
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    try {
      await rt.next("session.created");
      assert.equal(slots(gw), 1, "the session holds the one slot");
      const http = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
      assert.equal(http.status, 503, "the limit is full for other work");
      await http.arrayBuffer();
      const up = await rawUpgrade(gw);
      assert.equal(up.status, 503);
      assert.equal(up.retryAfter, "1");
      assert.match(JSON.parse(up.body).error.message, /adaptive concurrency limit/);
      ask(rt, "hello");
      const done = await rt.next("response.done");
      assert.equal(done["response"].status, "completed", JSON.stringify(done));
      assert.equal(slots(gw), 0, "the response's stream released the slot; between responses the session holds none");
      // A second response is admitted as any other (the limit has room again).
      ask(rt, "again");
      const again = await rt.next("response.done", () => true, 20_000, rt.events.indexOf(done) + 1);
      assert.equal(again["response"].status, "completed");
      assert.equal((await rawUpgrade(gw)).status, 101, "nothing reserved any more");
    } finally {
      await rt.close();
      await gw.close();
    }
  });

  it("input_audio_buffer.clear gives the reservation back, and the next response is admitted as any other", async () => {
    const gw = await startTestGateway({ limits: pinned(1) }, { realtimeSetupReservationMs: 600_000 });
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    try {
      await rt.next("session.created");
      assert.equal(slots(gw), 1);
      rt.send({ type: "input_audio_buffer.clear" });
      await rt.next("input_audio_buffer.cleared");
      assert.equal(slots(gw), 0, "released at the clear");
      assert.equal((await rawUpgrade(gw)).status, 101, "the slot is free for another session");
      await freed(gw, "the probe session's reservation released at its close");
      ask(rt, "hello");
      assert.equal((await rt.next("response.done"))["response"].status, "completed");
    } finally {
      await rt.close();
      await gw.close();
    }
  });

  it("the socket closing gives the reservation back", async () => {
    const gw = await startTestGateway({ limits: pinned(1) }, { realtimeSetupReservationMs: 600_000 });
    try {
      const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
      await rt.next("session.created");
      assert.equal(slots(gw), 1);
      await rt.close();
      await freed(gw, "released at close");
      assert.equal(gw.gateway.engine.admission.openSessions, 0);
    } finally {
      await gw.close();
    }
  });

  it("the timer gives the reservation back when no response started (short timer)", async () => {
    const gw = await startTestGateway({ limits: pinned(1) }, { realtimeSetupReservationMs: 20 });
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    try {
      await rt.next("session.created");
      await freed(gw, "released by the timer");
      assert.equal(rt.ws.readyState, rt.ws.OPEN, "the session goes on");
      ask(rt, "late");
      assert.equal((await rt.next("response.done"))["response"].status, "completed", "admitted as any later response");
    } finally {
      await rt.close();
      await gw.close();
    }
  });

  it("a transcription session gives the reservation back at once (it has no responses)", async () => {
    const gw = await startTestGateway({ limits: pinned(1) }, { realtimeSetupReservationMs: 600_000 });
    const rt = await RealtimeTestClient.connect(`${realtimeUrl(gw.origin)}&intent=transcription`);
    try {
      await rt.next("session.created");
      assert.equal(slots(gw), 0);
      assert.equal((await rawUpgrade(gw)).status, 101);
    } finally {
      await rt.close();
      await gw.close();
    }
  });

  it("the stream cap still holds for the reserved first response (error event, close 1013)", async () => {
    const gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 50 } }, limits: { ...pinned(2), maxConcurrentStreams: 1 } }, { realtimeSetupReservationMs: 600_000 });
    const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    const ac = new AbortController();
    try {
      await rt.next("session.created");
      const words = Array.from({ length: 600 }, (_, i) => `w${i}`).join(" ");
      const slow = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true }, { signal: ac.signal });
      assert.equal(slow.status, 200, "the second adaptive slot");
      void slow.text().catch(() => undefined);
      assert.equal(gw.gateway.engine.admission.openStreams, 1, "the stream cap is full");
      ask(rt, "x");
      const err = await rt.next("error", (e) => e["error"]?.code === "server_overloaded");
      assert.match(err["error"].message, /limits\.maxConcurrentStreams/);
      assert.equal((await rt.closed).code, 1013);
      assert.equal(rt.all("response.created").length, 0);
    } finally {
      ac.abort();
      await rt.close();
      await gw.close();
    }
  });
});
