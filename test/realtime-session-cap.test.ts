/**
 * Realtime sessions have their own bound per process
 * (`limits.maxRealtimeSessions`, by default derived from the open-file
 * limit): a session holds sockets the stream cap does not count. Past it the
 * upgrade is refused with 503 + Retry-After before the WebSocket is
 * accepted, the refusal is counted by cause, and the place is freed once
 * when the session closes. Every refusal for load says its real reason —
 * the stream cap, the session cap, the adaptive limit, the drain — in the
 * same words on every door, rendered by the one mechanism the HTTP door
 * uses (the OpenAI shape's `renderError`) and by gRPC's status table.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { parseConfig } from "../src/config/load.js";
import { AdaptiveLimit, OVERLOADED } from "../src/engine/adaptive-limit.js";
import { Admission, overloadCause } from "../src/engine/admission.js";
import { defaultConcurrentStreams, defaultRealtimeSessions, FDS_PER_SESSION, FDS_PER_STREAM, parseProcLimits, readOpenFileLimit } from "../src/engine/limits/descriptor-budget.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { rawUpgrade } from "./helpers/realtime-upgrade.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { until } from "./helpers/saturate.js";
import { postJson } from "./helpers/sse.js";

const errorOf = (body: string): { code: string; message: string; type: string } => (JSON.parse(body) as { error: { code: string; message: string; type: string } }).error;

/** A slow chat stream holding one slot until `stop()`. */
async function slowStream(gw: TestGateway): Promise<{ stop: () => void }> {
  const ac = new AbortController();
  const words = Array.from({ length: 600 }, (_, i) => `w${i}`).join(" ");
  const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true }, { signal: ac.signal });
  assert.equal(res.status, 200);
  void res.text().catch(() => undefined);
  return { stop: () => ac.abort() };
}

async function metric(gw: TestGateway, line: RegExp): Promise<RegExpExecArray | null> {
  return line.exec(await (await fetch(`${gw.origin}/metrics`)).text());
}

describe("the open-file budget (unit)", () => {
  it("reads the soft limit from /proc/self/limits; the default session cap follows the formula", () => {
    const text = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
    assert.equal(parseProcLimits(text), 1024);
    assert.equal(parseProcLimits("Max open files            unlimited            unlimited            files\n"), Infinity);
    assert.equal(parseProcLimits("nothing here"), undefined);
    const here = readOpenFileLimit();
    assert.equal(here.source, "proc");
    assert.equal(here.soft, parseProcLimits(readFileSync("/proc/self/limits", "utf8")));
    assert.equal(FDS_PER_SESSION, 4);
    // floor((nofile - min(256, nofile/4)) / (2 * 4)), at least 1.
    assert.equal(defaultRealtimeSessions(20_000), 2468);
    assert.equal(defaultRealtimeSessions(1024), 96);
    assert.equal(defaultRealtimeSessions(256), 24);
    assert.equal(defaultRealtimeSessions(4), 1);
    assert.equal(defaultRealtimeSessions(Infinity), 100_000);
    // The stream cap: the other half, two descriptors a stream, at most 10,000.
    assert.equal(FDS_PER_STREAM, 2);
    assert.equal(defaultConcurrentStreams(20_000), 4936);
    assert.equal(defaultConcurrentStreams(4096), 960);
    assert.equal(defaultConcurrentStreams(1024), 192);
    assert.equal(defaultConcurrentStreams(2), 1);
    assert.equal(defaultConcurrentStreams(1_048_576), 10_000);
    assert.equal(defaultConcurrentStreams(Infinity), 10_000);
    for (const n of [64, 256, 1024, 4096, 20_000, 40_256]) {
      const used = defaultConcurrentStreams(n) * FDS_PER_STREAM + defaultRealtimeSessions(n) * FDS_PER_SESSION;
      assert.ok(used <= n - Math.min(256, Math.floor(n / 4)), `${n}: both caps at their defaults fit the descriptors (${used})`);
    }
  });
});

describe("Admission.openSession and refusal() (unit)", () => {
  it("counts sessions to the cap, refuses past it with its own reason, frees each place once", () => {
    const causes: string[] = [];
    const admission = new Admission([], { maxConcurrentStreams: 10, maxRealtimeSessions: 2, onRefusal: (c) => causes.push(c) });
    const a = admission.openSession();
    const b = admission.openSession();
    assert.equal(admission.openSessions, 2);
    let refused: unknown;
    assert.throws(() => admission.openSession(), (e: unknown) => ((refused = e), true));
    const err = refused as { message: string; httpStatus: number; retryAfterMs: number; reason: string };
    assert.match(err.message, /limit of open realtime sessions \(limits\.maxRealtimeSessions\)/);
    assert.equal(err.httpStatus, 503);
    assert.equal(err.retryAfterMs, 1000);
    assert.equal(err.reason, "server_overloaded");
    assert.equal(overloadCause(refused), "session_cap");
    assert.deepEqual(causes, ["session_cap"]);
    a();
    a();
    assert.equal(admission.openSessions, 1, "released once");
    const c = admission.openSession();
    assert.throws(() => admission.openSession(), /realtime sessions/, "a double release did not free a second place");
    b();
    c();
    assert.equal(admission.openSessions, 0);
    // The session cap counts sessions only: streams are admitted whatever it says.
    assert.equal(admission.wouldAdmit(), true);
    admission.reconfigure([], 10, 0 + 1);
    admission.openSession();
    assert.throws(() => admission.openSession(), /realtime sessions/, "a reload sets the cap");
  });

  it("refusal() gives the reason enter() would: the stream cap, the saturated loop, the adaptive limit; each counted by cause", () => {
    const causes: string[] = [];
    const onRefusal = (c: string): number => causes.push(c);
    const capped = new Admission([], { maxConcurrentStreams: 0, onRefusal });
    assert.match(capped.refusal()!.message, /limit of concurrent streams \(limits\.maxConcurrentStreams\)/);
    assert.throws(() => capped.openSession(), /limits\.maxConcurrentStreams/, "a session whose streams would be refused is refused at the upgrade");
    const loop = new Admission([], { maxConcurrentStreams: 10, overloaded: () => true, onRefusal });
    assert.match(loop.refusal()!.message, /event loop is saturated/);
    const limit = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 1, maxLimit: 1, queueMs: 0, sampler: "manual" });
    const adaptive = new Admission([], { maxConcurrentStreams: 10, concurrency: limit, onRefusal });
    assert.equal(adaptive.refusal(), undefined);
    const held = adaptive.enter();
    assert.equal(adaptive.refusal(), OVERLOADED);
    assert.match(OVERLOADED.message, /adaptive concurrency limit/);
    assert.throws(() => adaptive.enter(), (e: unknown) => e === OVERLOADED);
    held.release();
    assert.deepEqual(causes, ["stream_cap", "stream_cap", "event_loop", "adaptive_limit", "adaptive_limit"]);
  });
});

describe("config: limits.maxRealtimeSessions", () => {
  it("is optional (derived at start), a positive integer when set; errors name the field", () => {
    assert.equal(parseConfig({}).limits.maxRealtimeSessions, undefined);
    assert.equal(parseConfig({}).limits.maxConcurrentStreams, undefined, "the stream cap is derived at start too");
    for (const bad of [0, -1, 1.5, "ten"]) {
      assert.throws(() => parseConfig({ limits: { maxConcurrentStreams: bad } }), /limits\.maxConcurrentStreams/, String(bad));
    }
    assert.equal(parseConfig({ limits: { maxRealtimeSessions: 5 } }).limits.maxRealtimeSessions, 5);
    for (const bad of [0, -1, 1.5, "ten"]) {
      assert.throws(() => parseConfig({ limits: { maxRealtimeSessions: bad } }), /limits\.maxRealtimeSessions/, String(bad));
    }
  });
});

describe("the realtime session cap at the upgrade", () => {
  it("refuses the session past the cap with 503 + Retry-After (its own reason), counts it, frees the place at close; streams are not limited by it", async () => {
    const gw = await startTestGateway({ limits: { maxRealtimeSessions: 2 } });
    const sessions: RealtimeTestClient[] = [];
    try {
      assert.ok(await metric(gw, /^spillway_realtime_session_limit 2$/m), "the cap as a gauge");
      for (let i = 0; i < 2; i++) {
        const s = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
        await s.next("session.created");
        sessions.push(s);
      }
      const up = await rawUpgrade(gw);
      assert.equal(up.status, 503);
      assert.equal(up.retryAfter, "1");
      const err = errorOf(up.body);
      assert.equal(err.code, "server_overloaded");
      assert.match(err.message, /limits\.maxRealtimeSessions/);
      assert.match((await metric(gw, /^spillway_overload_refusals_total\{cause="session_cap"\} (\d+)$/m))?.[1] ?? "0", /^[1-9]/, "counted by cause");
      // The session cap is not a stream cap: HTTP and gRPC streams are served while it is full.
      const chat = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
      assert.equal(chat.status, 200);
      await chat.arrayBuffer();
      const grpc = spillwayClient(gw.grpcAddress!);
      assert.equal((await readAll(grpc.generate(generateRequest("local/echo", "x")))).error, undefined);
      grpc.close();
      // A session closing frees its place, once.
      await sessions.shift()!.close();
      await until(async () => gw.gateway.engine.admission.openSessions === 1, "the closed session's place freed");
      const again = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
      await again.next("session.created");
      sessions.push(again);
      assert.equal((await rawUpgrade(gw)).status, 503, "full again: the place was freed once");
    } finally {
      for (const s of sessions) await s.close();
      await gw.close();
    }
    assert.equal(gw.gateway.engine.admission.openSessions, 0);
  });
});

/**
 * Each cause of a refusal for load, made certain without timing, and the
 * message every door must give for it (the HTTP body, the gRPC details, the
 * realtime upgrade's body and a session's in-band `error` event).
 */
const CAUSES = [
  {
    name: "the stream cap (limits.maxConcurrentStreams)",
    config: { limits: { maxConcurrentStreams: 1 } },
    message: /limits\.maxConcurrentStreams/,
    code: "server_overloaded",
  },
  {
    name: "the adaptive limit (pinned at 1)",
    config: { limits: { adaptiveConcurrency: { targetDelayMs: 0.001, minLimit: 1, maxLimit: 1, queueMs: 0 } } },
    message: /adaptive concurrency limit/,
    code: "server_overloaded",
  },
] as const;

describe("every door says the real reason of a refusal, in the same words", () => {
  for (const cause of CAUSES) {
    it(`${cause.name}: HTTP, gRPC, the realtime upgrade and response.create carry the same message`, async () => {
      const gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 50 } }, ...cause.config });
      const grpc = spillwayClient(gw.grpcAddress!);
      const rt = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
      try {
        await rt.next("session.created");
        // Between responses: the slot reserved at the upgrade for a first response goes back.
        rt.send({ type: "input_audio_buffer.clear" });
        await rt.next("input_audio_buffer.cleared");
        const slow = await slowStream(gw);
        try {
          const http = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
          assert.equal(http.status, 503);
          const httpErr = ((await http.json()) as { error: { code: string; message: string } }).error;
          assert.equal(httpErr.code, cause.code);
          assert.match(httpErr.message, cause.message);
          const g = await readAll(grpc.generate(generateRequest("local/echo", "x")));
          assert.equal(g.error?.code, status.UNAVAILABLE);
          assert.equal(g.error?.details, httpErr.message, "gRPC: the same message");
          const up = await rawUpgrade(gw);
          assert.equal(up.status, 503);
          assert.equal(up.retryAfter, "1");
          assert.deepEqual(errorOf(up.body), httpErr, "the upgrade: the HTTP door's body, byte for byte in meaning");
          rt.send({ type: "response.create", response: { output_modalities: ["text"], instructions: "say x" } });
          const ev = await rt.next("error", (e) => e["error"]?.code === cause.code, 10_000);
          assert.equal(ev["error"].message, httpErr.message, "response.create: the same message");
          assert.equal((await rt.closed).code, 1013);
        } finally {
          slow.stop();
        }
      } finally {
        await rt.close();
        grpc.close();
        await gw.close();
      }
    });
  }

  it("the drain: the upgrade says the server is shutting down (server_shutting_down), as HTTP does", async () => {
    const gw = await startTestGateway();
    try {
      gw.gateway.http.drain();
      gw.gateway.realtime.drain();
      const http = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
      assert.equal(http.status, 503);
      const httpErr = ((await http.json()) as { error: { code: string; message: string } }).error;
      const up = await rawUpgrade(gw);
      assert.equal(up.status, 503);
      assert.equal(up.retryAfter, "1");
      const err = errorOf(up.body);
      assert.equal(err.code, "server_shutting_down");
      assert.equal(err.message, httpErr.message);
    } finally {
      await gw.close();
    }
  });
});
