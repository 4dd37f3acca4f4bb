/**
 * Out of file descriptors at the realtime door (issue 16: at 4x overload
 * the realtime door ran the process into EMFILE). Under a real, low
 * open-file limit (`prlimit`):
 *
 * - the default `limits.maxRealtimeSessions` is derived from the limit
 *   (256 → 24), and the session past it is refused at the upgrade with 503
 *   and its reason, long before the descriptors run out;
 * - a flood of connections past the limit (EMFILE on accept: uWS cannot
 *   accept them, they wait in the kernel's backlog) does not crash the
 *   process; the sessions open through it go on, and once the flood is gone
 *   new connections are served again;
 * - EMFILE on the relay's upstream WebSocket is the gateway's overload: the
 *   client gets an `error` event `server_overloaded` and close 1013 (try
 *   again later), not an upstream failure; with descriptors back, the same
 *   profile is served.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { startFakeOpenAiRealtime } from "./helpers/fake-openai-realtime.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { until } from "./helpers/saturate.js";

const skip = existsSync("/usr/bin/prlimit") ? false : "prlimit (util-linux) missing";

/** `p`, or a failure naming `what` after `ms` (a step that never ends fails the test instead of hanging it). */
function within<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Lines the child prints, parsed, as they come. */
function lines(child: ChildProcess): () => Promise<Record<string, unknown>> {
  const queue: Array<Record<string, unknown>> = [];
  const waiting: Array<(v: Record<string, unknown>) => void> = [];
  createInterface({ input: child.stdout! }).on("line", (l) => {
    if (!l.startsWith("{")) return;
    const v = JSON.parse(l) as Record<string, unknown>;
    // The gateway's own log lines go to stdout too.
    if (!("port" in v || "armed" in v || "freed" in v)) return;
    const w = waiting.shift();
    if (w) w(v);
    else queue.push(v);
  });
  return () => {
    const v = queue.shift();
    return v ? Promise.resolve(v) : new Promise((r) => waiting.push(r));
  };
}

/** A realtime upgrade expected to be refused: its status and body. */
function refusedUpgrade(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: "/v1/realtime", headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" } });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("realtime and file descriptors under prlimit", () => {
  it("the default session cap (from the open-file limit) refuses before the descriptors run out; a connection flood past the limit crashes nothing", { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-emfile-"));
    const cfg = join(dir, "c.yaml");
    writeFileSync(cfg, ["http: { host: 127.0.0.1, port: 0 }", "grpc: { enabled: false }", "shutdown: { graceMs: 500 }", "providers: { local: { type: local } }", ""].join("\n"));
    const child = spawn("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", "src/main.ts", "--config", cfg, "--workers", "1"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
    const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    let out = "";
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const sessions: RealtimeTestClient[] = [];
    const flood: Socket[] = [];
    try {
      const port = await within(new Promise<number>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const line = out.split("\n").find((l) => l.includes("spillway listening"));
          if (line) resolve((JSON.parse(line) as { http: number }).http);
        });
        child.once("exit", () => reject(new Error(`exited early: ${out}`)));
      }), "the gateway's listening line");
      const origin = `http://127.0.0.1:${port}`;
      const metrics = await within(fetch(`${origin}/metrics`).then((r) => r.text()), "metrics");
      assert.match(metrics, /^spillway_realtime_session_limit 24$/m, "floor((256 - 64) / 8)");
      for (let i = 0; i < 24; i++) {
        const s = await within(RealtimeTestClient.connect(realtimeUrl(origin)), `session ${i}`);
        await s.next("session.created");
        sessions.push(s);
      }
      await assert.rejects(RealtimeTestClient.connect(realtimeUrl(origin)), /unexpected response 503/, "the 25th session is refused at the upgrade");
      const up = await within(refusedUpgrade(port), "the refused upgrade");
      assert.equal(up.status, 503);
      assert.match(up.body, /limits\.maxRealtimeSessions/);
      // Past the limit: connections the process cannot accept (EMFILE on accept).
      for (let i = 0; i < 300; i++) {
        const s = connect(port, "127.0.0.1");
        s.on("error", () => undefined);
        flood.push(s);
      }
      const fds = (): number => readdirSync(`/proc/${child.pid}/fd`).length;
      await until(async () => fds() >= 255, "the gateway at its open-file limit");
      for (const s of flood.splice(0)) s.destroy();
      // Nothing crashed: new connections are served again, and the sessions open through it go on.
      await until(async () => (await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)) === 200, "served again after the flood");
      const s = sessions[0]!;
      s.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "still here" }] } });
      s.send({ type: "response.create", response: { output_modalities: ["text"] } });
      assert.equal((await s.next("response.done", () => true, 30_000))["response"].status, "completed");
      assert.equal(child.exitCode, null, `the gateway is running: ${out.slice(-500)}`);
    } finally {
      for (const s of flood) s.destroy();
      for (const s of sessions) await within(s.close(), "a session close", 5000).catch(() => undefined);
      child.kill("SIGTERM");
    }
    assert.equal(await within(exit, "the gateway's exit"), 0, out.slice(-2000));
  });

  it("EMFILE on the relay's upstream socket: error server_overloaded and close 1013 for the client; served again once descriptors are back", { skip }, async () => {
    const fake = await startFakeOpenAiRealtime({ deltas: 2, deltaDelayMs: 5 });
    const child = spawn("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", "test/fixtures/emfile-realtime.ts", fake.baseUrl], { stdio: ["pipe", "pipe", "inherit"] });
    const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const next = lines(child);
    try {
      const { port } = (await within(next(), "the fixture's port")) as { port: number };
      const url = realtimeUrl(`http://127.0.0.1:${port}`, "openai/gpt-realtime");
      child.stdin.write("arm\n");
      assert.equal((await within(next(), "armed"))["armed"], true);
      const upgrades = fake.upgrades.length;
      const c = await within(RealtimeTestClient.connect(url), "the client connects");
      const err = await c.next("error");
      assert.equal(err["error"].code, "server_overloaded", JSON.stringify(err));
      assert.match(err["error"].message, /out of file descriptors/);
      assert.equal((await within(c.closed, "the close")).code, 1013, "try again later");
      assert.equal(fake.upgrades.length, upgrades, "no upstream connection was made");
      child.stdin.write("free\n");
      assert.ok(((await within(next(), "freed"))["freed"] as number) > 0, "the descriptors were taken at the dial");
      const again = await within(RealtimeTestClient.connect(url), "the client connects again");
      await again.next("session.created");
      again.send({ type: "response.create" });
      assert.equal((await again.next("response.done"))["response"].status, "completed", "served again");
      await within(again.close(), "the second client closes");
      child.stdin.write("exit\n");
      assert.equal(await within(exit, "the fixture's exit"), 0);
    } finally {
      child.kill("SIGTERM");
      await within(fake.close(), "the fake closes").catch(() => undefined);
    }
  });
});
