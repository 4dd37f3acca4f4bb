/**
 * `tsx load/hotpath-threads.ts ROOT|floor MODE SECONDS`: where a gateway's CPU per request goes,
 * by thread (issue 16). Starts the mock and one target (a Spillway tree at ROOT, `--workers 1`, or
 * `floor`: load/node-floor.ts), runs autocannon (32 connections, MODE json / sse / sseN as in
 * hotpath-cpu.ts) after a 2 s warm-up, and prints the user and system CPU µs per completed request
 * of each of the target's threads (from /proc/PID/task/TID/stat, grouped by thread name: the main
 * thread, V8's GC helpers, libuv's threadpool…). A CPU profile (`hotpath-profile.ts`) samples the
 * main thread only; this says how much lies outside it.
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autocannon } from "./hotpath-autocannon.js";
import { startMock } from "./procs.js";

const [root, mode, secs] = [process.argv[2]!, process.argv[3] ?? "json", Number(process.argv[4] ?? "8")];
const TICK_US = 1e6 / 100; // USER_HZ
const mock = await startMock();
const dir = mkdtempSync(join(tmpdir(), "hp-thr-"));
const cfg = join(dir, "c.json");
writeFileSync(cfg, JSON.stringify({ http: { host: "127.0.0.1", port: 0 }, grpc: { host: "127.0.0.1", port: 0 }, limits: { maxConcurrentStreams: 100000, idleTimeoutMs: 120000, adaptiveConcurrency: { enabled: false } }, routing: { maxAttempts: 1 }, shutdown: { graceMs: 0 }, providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mock.port}/v1`, models: ["m"] } } }));
const floor = root === "floor";
/** `BUILT=1`: run the tree compiled (`dist/main.js`, after `tsc -p tsconfig.build.json`) instead of under tsx. */
/** Extra node flags for the target (`NODE_ARGS="--trace-gc"`), for experiments. */
const nodeArgs = (process.env["NODE_ARGS"] ?? "").split(" ").filter(Boolean);
const gw = floor
  ? spawn(process.execPath, [...nodeArgs, "--import", "tsx", "load/node-floor.ts", "--upstream", `http://127.0.0.1:${mock.port}`], { stdio: ["ignore", "pipe", "inherit"] })
  : spawn(process.execPath, [...nodeArgs, ...(process.env["BUILT"] ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"]), "--config", cfg, "--workers", "1"], { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { LOG_LEVEL: "info", ...process.env } });
let out = "";
/** The target's stdout, kept in `STDOUT_FILE` when set (e.g. `--trace-gc` lines). */
const keep = process.env["STDOUT_FILE"];
if (keep) gw.stdout.on("data", (d: Buffer) => appendFileSync(keep, d));
const port = await new Promise<number>((resolve) => gw.stdout.on("data", (d: Buffer) => { out += d.toString(); const l = out.split("\n").find((x) => x.includes("listening") || x.startsWith('{"port"')); if (l && out.length < 1e6) { const j = JSON.parse(l) as { http?: number; port?: number }; resolve(j.http ?? j.port!); out = "x".repeat(1e6); } }));
const delay = mode.startsWith("sse") ? Number(mode.slice(3) || "0") : 0;
const b: Record<string, unknown> = { model: `${floor ? "" : "mock/"}m-c20-b16-d${delay}-f0`, messages: [{ role: "user", content: "hi" }] };
if (mode.startsWith("sse")) b["stream"] = true;
const opts = { url: `http://127.0.0.1:${port}/v1/chat/completions`, connections: 32, method: "POST" as const, headers: { "content-type": "application/json" }, body: JSON.stringify(b) };

/** user and system ticks of each thread of `pid`, by thread id, with its name. */
function threads(pid: number): Map<string, { name: string; user: number; sys: number }> {
  const m = new Map<string, { name: string; user: number; sys: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      m.set(tid, { name, user: Number(f[11]), sys: Number(f[12]) });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return m;
}

await autocannon({ ...opts, duration: 2 });
const before = threads(gw.pid!);
const r = await autocannon({ ...opts, duration: secs });
const after = threads(gw.pid!);
const n = r["2xx"];
const byName = new Map<string, { user: number; sys: number; count: number }>();
for (const [tid, a] of after) {
  const p = before.get(tid) ?? { user: 0, sys: 0 };
  const name = tid === String(gw.pid) ? "main" : a.name.replace(/\d+$/, "N");
  const e = byName.get(name) ?? { user: 0, sys: 0, count: 0 };
  e.user += a.user - p.user;
  e.sys += a.sys - p.sys;
  e.count++;
  byName.set(name, e);
}
console.log(`${n} ok, ${r.non2xx} non2xx, ${mode}, ${floor ? "node-floor" : root}`);
let tu = 0;
let ts = 0;
for (const [name, e] of [...byName.entries()].sort((x, y) => y[1].user + y[1].sys - (x[1].user + x[1].sys))) {
  if (e.user + e.sys === 0) continue;
  tu += e.user;
  ts += e.sys;
  console.log(`${name.padEnd(20)} ×${String(e.count).padEnd(3)} user ${((e.user * TICK_US) / n).toFixed(1).padStart(6)} µs  sys ${((e.sys * TICK_US) / n).toFixed(1).padStart(6)} µs`);
}
console.log(`${"total".padEnd(24)} user ${((tu * TICK_US) / n).toFixed(1).padStart(6)} µs  sys ${((ts * TICK_US) / n).toFixed(1).padStart(6)} µs  = ${(((tu + ts) * TICK_US) / n).toFixed(1)} µs/request`);
gw.kill("SIGTERM");
await new Promise((res) => gw.once("exit", res));
await mock.stop();
