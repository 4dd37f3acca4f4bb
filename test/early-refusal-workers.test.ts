/**
 * Early refusal through the real multi-worker process (`--workers 2`, what
 * `npm start` runs on a multi-core host): each worker keeps its own limits,
 * so past capacity means every worker full. Two settings make a worker's
 * capacity one stream without timing — the stream cap
 * (`limits.maxConcurrentStreams: 1`, the adaptive limit on with its
 * defaults) and the adaptive limit pinned at 1 (`minLimit` = `maxLimit`) — so one slow
 * stream per worker fills the process, each on an HTTP connection pinned to that
 * worker (kept alive, the worker named by `/healthz`'s `pid`). Then every
 * door refuses on every worker — HTTP SSE (503 + Retry-After), a follower
 * of the durable log (shared by the workers), gRPC (`UNAVAILABLE`, over
 * connections the primary hands to the workers in turn), the realtime
 * upgrade (503) and `response.create` (error `server_overloaded`, close
 * 1013) — and once the slow streams end, every worker serves again.
 */
import assert from "node:assert/strict";
import { Agent, request, type IncomingMessage } from "node:http";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { startGatewayProcess, type GatewayProcess } from "./helpers/gateway-process.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { until } from "./helpers/saturate.js";
import { SUMMED_GAUGES } from "../src/observability/cluster-metrics.js";

const config = (limits: string): string =>
  ["http: { host: 127.0.0.1, port: 0 }", "grpc: { host: 127.0.0.1, port: 0 }", "shutdown: { graceMs: 1000 }", "providers: { local: { type: local, tokenDelayMs: 50 } }", `limits: ${limits}`, ""].join("\n");

/** Two ways to make each worker's capacity one stream, without timing. */
const MODES = [
  {
    name: "the stream cap (maxConcurrentStreams 1; the adaptive limit on, with its defaults)",
    limits: "{ maxConcurrentStreams: 1 }",
    message: /limit of concurrent streams/,
    ready: undefined,
  },
  {
    // A target of 1 µs: every sample of the loop is over it, so each worker's limit sits at minLimit (1).
    name: "the adaptive limit (pinned at 1 in each worker)",
    limits: "{ adaptiveConcurrency: { targetDelayMs: 0.001, minLimit: 1, maxLimit: 1, queueMs: 0 } }",
    message: /past its capacity/,
    // One series per worker (the gauge carries the `worker` label; never summed): both at 1.
    ready: /^spillway_concurrency_limit\{worker="\d+"\} 1\n(?:[^\n]*\n)*?spillway_concurrency_limit\{worker="\d+"\} 1$/m,
  },
] as const;

const UPGRADE = { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };

/** One HTTP connection, kept alive, to the worker whose pid it names. */
interface Pinned {
  readonly agent: Agent;
  readonly pid: number;
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
}

/** Sends a request on `agent` (its one connection) and reads the whole answer. */
function send(port: number, agent: Agent, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, agent, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A connection pinned to a worker: new connections until one lands on a worker `accept` takes. */
async function pin(port: number, accept: (pid: number) => boolean): Promise<Pinned> {
  for (let i = 0; i < 200; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const health = await send(port, agent, "GET", "/healthz");
    const pid = (JSON.parse(health.body) as { pid: number }).pid;
    if (accept(pid)) return { agent, pid };
    agent.destroy();
  }
  return assert.fail("no connection reached the worker wanted");
}

/** A slow chat stream on `pinned`'s connection: resolves with its status once the head arrived; `stop()` drops it. */
function slowStream(port: number, pinned: Pinned): Promise<{ status: number; stop: () => void }> {
  const words = Array.from({ length: 2000 }, (_, i) => `w${i}`).join(" ");
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, agent: pinned.agent, method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.on("error", () => undefined);
        resolve({ status: res.statusCode ?? 0, stop: () => req.destroy() });
      },
    );
    req.on("error", (e) => (req.destroyed ? undefined : reject(e)));
    req.end(JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: words }], stream: true }));
  });
}

const chatStream = (port: number, agent: Agent): Promise<Answer> =>
  send(port, agent, "POST", "/v1/chat/completions", { "content-type": "application/json" }, JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "one two" }], stream: true }));

/**
 * Every gauge of a `--workers 2` scrape is either a count the workers' values
 * add up to (`SUMMED_GAUGES`) or carries the `worker` label on every sample,
 * two workers' worth: a limit, a ratio or a delay summed across workers
 * (`spillway_concurrency_limit -2` for two unlimited workers) fails here,
 * for any gauge added later.
 */
function assertPerWorkerGauges(text: string): void {
  const gauges = [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]!);
  assert.ok(gauges.includes("spillway_concurrency_limit") && gauges.includes("spillway_realtime_session_limit"), gauges.join(", "));
  for (const name of gauges) {
    if (SUMMED_GAUGES.has(name)) continue;
    const samples = text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    for (const line of samples) assert.match(line, /\{(?:[^}]*,)?worker="\d+"/, `${name} is summed across workers: ${line}`);
    // A gauge with no label but `worker` has a series in every worker; one split by another label
    // (`spillway_nodejs_active_requests{type=…}`) has a series only where that worker has such a value.
    const workerOnly = samples.every((l) => /^\S+\{worker="\d+"\} /.test(l));
    if (samples.length > 0 && workerOnly) assert.ok(new Set(samples.map((l) => /worker="(\d+)"/.exec(l)![1])).size >= 2, `${name}: one series per worker`);
  }
  // The adaptive limit is on by default: unlimited is -1 in each worker's own series.
  assert.equal([...text.matchAll(/^spillway_concurrency_limit\{worker="\d+"\} -?\d+$/gm)].length, 2, "spillway_concurrency_limit per worker");
}

function assertRefused(a: Answer, what: string, message: RegExp): void {
  assert.equal(a.status, 503, `${what}: ${a.body}`);
  assert.equal(a.headers["retry-after"], "1", what);
  if (!a.body) return;
  const err = (JSON.parse(a.body) as { error: { code: string; message: string } }).error;
  assert.equal(err.code, "server_overloaded", what);
  assert.match(err.message, message, what);
}

describe("early refusal with --workers 2", () => {
  for (const mode of MODES) it(`past capacity by ${mode.name}: every door refuses on every worker (HTTP SSE, a log follower, gRPC, realtime upgrade and response.create), and every worker serves again after`, async () => {
    const gw: GatewayProcess = await startGatewayProcess(config(mode.limits), 2);
    const port = gw.http;
    const agents: Agent[] = [];
    const pinTo = async (accept: (pid: number) => boolean): Promise<Pinned> => {
      const p = await pin(port, accept);
      agents.push(p.agent);
      return p;
    };
    const grpcClients = Array.from({ length: 4 }, () => spillwayClient(`127.0.0.1:${gw.grpc}`, { "grpc.use_local_subchannel_pool": 1 }));
    const sessions: RealtimeTestClient[] = [];
    try {
      // Two workers, with the adaptive limit on by default: its gauge has one series per worker.
      const first = await pinTo(() => true);
      const second = await pinTo((pid) => pid !== first.pid);
      const pids = [first.pid, second.pid];
      const metrics = await send(port, first.agent, "GET", "/metrics");
      assertPerWorkerGauges(metrics.body);
      const ready = mode.ready;
      if (ready) await until(async () => ready.test((await send(port, first.agent, "GET", "/metrics")).body), "both workers' limits pinned at 1");
      // A stored response (the durable log is shared by the workers), finished before the saturation.
      const created = await send(port, first.agent, "POST", "/v1/responses", { "content-type": "application/json" }, JSON.stringify({ model: "local/echo", input: "kept", background: true }));
      assert.equal(created.status, 200, created.body);
      const id = (JSON.parse(created.body) as { id: string }).id;
      await until(async () => (JSON.parse((await send(port, first.agent, "GET", `/v1/responses/${id}`)).body) as { status: string }).status === "completed", "the stored response completed");
      // Realtime sessions opened before: between responses (the clear gives back the slot
      // reserved at the upgrade for a first response) they hold no slot while idle.
      for (let i = 0; i < 2; i++) {
        const s = await RealtimeTestClient.connect(realtimeUrl(`http://127.0.0.1:${port}`));
        await s.next("session.created");
        s.send({ type: "input_audio_buffer.clear" });
        await s.next("input_audio_buffer.cleared");
        sessions.push(s);
      }
      // gRPC is served on every connection before.
      for (const c of grpcClients) assert.equal((await readAll(c.generate(generateRequest("local/echo", "before")))).error, undefined);

      // Fill both workers: one slow stream each, on a connection pinned to it.
      const slow = await Promise.all(pids.map(async (pid) => slowStream(port, await pinTo((p) => p === pid))));
      assert.deepEqual(slow.map((s) => s.status), [200, 200]);
      try {
        for (const pid of pids) {
          // HTTP SSE and a follower of the log, each on a connection pinned to this worker.
          assertRefused(await chatStream(port, (await pinTo((p) => p === pid)).agent), `SSE on worker ${pid}`, mode.message);
          assertRefused(await send(port, (await pinTo((p) => p === pid)).agent, "GET", `/v1/responses/${id}?stream=true`), `follower on worker ${pid}`, mode.message);
          // The realtime upgrade.
          const up = await send(port, (await pinTo((p) => p === pid)).agent, "GET", "/v1/realtime?model=local/realtime", UPGRADE);
          // The upgrade says the real reason, as the HTTP door does.
          assertRefused(up, `realtime upgrade on worker ${pid}`, mode.message);
        }
        // gRPC: four connections, handed to the workers in turn.
        for (const c of grpcClients) {
          const r = await readAll(c.generate(generateRequest("local/echo", "over")));
          assert.equal(r.error?.code, status.UNAVAILABLE, r.error?.details);
        }
        // Realtime sessions opened before: response.create is refused in-band, then close 1013.
        for (const s of sessions) {
          s.send({ type: "response.create", response: { output_modalities: ["text"], instructions: "say x" } });
          const err = await s.next("error", (e) => e["error"]?.code === "server_overloaded", 20_000);
          assert.ok(err);
          assert.equal((await s.closed).code, 1013);
        }
      } finally {
        for (const s of slow) s.stop();
      }

      // Saturation over: each worker serves again, every door.
      for (const pid of pids) {
        await until(async () => {
          const a = await send(port, (await pinTo((p) => p === pid)).agent, "GET", `/v1/responses/${id}?stream=true`);
          return a.status === 200 && /response\.completed/.test(a.body);
        }, `worker ${pid} serves a follower again`);
        const sse = await chatStream(port, (await pinTo((p) => p === pid)).agent);
        assert.equal(sse.status, 200, sse.body);
        assert.match(sse.body, /one[\s\S]*\[DONE\]/);
        const up = await send(port, (await pinTo((p) => p === pid)).agent, "GET", "/v1/realtime?model=local/realtime", UPGRADE);
        assert.equal(up.status, 101, `realtime upgrade on worker ${pid}`);
      }
      for (const c of grpcClients) assert.equal((await readAll(c.generate(generateRequest("local/echo", "after")))).error, undefined);
      const again = await RealtimeTestClient.connect(realtimeUrl(`http://127.0.0.1:${port}`));
      sessions.push(again);
      await again.next("session.created");
      again.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "back" }] } });
      again.send({ type: "response.create", response: { output_modalities: ["text"] } });
      assert.equal((await again.next("response.done", () => true, 30_000))["response"].status, "completed");
    } finally {
      for (const s of sessions) await s.close().catch(() => undefined);
      for (const c of grpcClients) c.close();
      for (const a of agents) a.destroy();
      gw.child.kill("SIGTERM");
      await gw.exit;
    }
  });
});

describe("the realtime session cap with --workers 2 (per worker)", () => {
  it("each worker admits limits.maxRealtimeSessions sessions; past that every upgrade is refused with the session cap's reason; a closed session frees its worker's place", async () => {
    const gw = await startGatewayProcess(config("{ maxRealtimeSessions: 1 }"), 2);
    const port = gw.http;
    const url = realtimeUrl(`http://127.0.0.1:${port}`);
    const sessions: RealtimeTestClient[] = [];
    const upgrade = (): Promise<Answer> => send(port, new Agent({ keepAlive: false }), "GET", "/v1/realtime?model=local/realtime", UPGRADE);
    try {
      const metrics = (await send(port, new Agent(), "GET", "/metrics")).body;
      assert.equal([...metrics.matchAll(/^spillway_realtime_session_limit\{worker="\d+"\} 1$/gm)].length, 2, "the cap, per worker");
      // New connections land on either worker (SO_REUSEPORT): open sessions until both workers hold one.
      for (let i = 0; i < 200 && sessions.length < 2; i++) {
        try {
          const s = await RealtimeTestClient.connect(url);
          await s.next("session.created");
          sessions.push(s);
        } catch (e) {
          assert.match((e as Error).message, /unexpected response 503/);
        }
      }
      assert.equal(sessions.length, 2, "one session per worker");
      // Both workers are full: every upgrade is refused, whichever worker takes it.
      for (let i = 0; i < 6; i++) assertRefused(await upgrade(), `upgrade ${i}`, /limits\.maxRealtimeSessions/);
      const refused = (await send(port, new Agent(), "GET", "/metrics")).body;
      assert.match(refused, /^spillway_overload_refusals_total\{cause="session_cap"\} ([6-9]|\d\d+)$/m, "refusals counted (summed over the workers)");
      // A session closing frees its worker's place, once.
      await sessions.shift()!.close();
      await until(async () => (await upgrade()).status === 101, "the freed worker accepts an upgrade");
      const again = await RealtimeTestClient.connect(url).catch(async () => {
        // Landed on the full worker: retry until the free one takes it.
        for (let i = 0; i < 200; i++) {
          try {
            return await RealtimeTestClient.connect(url);
          } catch {
            // the other worker
          }
        }
        return assert.fail("no worker took the session");
      });
      sessions.push(again);
      await again.next("session.created");
      for (let i = 0; i < 6; i++) assertRefused(await upgrade(), `upgrade ${i} after`, /limits\.maxRealtimeSessions/);
    } finally {
      for (const s of sessions) await s.close().catch(() => undefined);
      gw.child.kill("SIGTERM");
      await gw.exit;
    }
  });
});
