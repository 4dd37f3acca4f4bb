/**
 * `tsx load/refusal-profile.ts sse|grpc|ws`: where a refusal's CPU goes.
 * Runs a 1-worker gateway under `--cpu-prof` whose stream cap
 * (`limits.maxConcurrentStreams` 4) is filled with slow streams, refuses a
 * closed loop of 32 new streams on the door for 5 s, and prints CPU µs per
 * refusal and the self time by package/area and by function over the steady
 * phase (from 1 s after the door's first sample; startup excluded). The
 * profile is kept in a temp dir (printed) for Chrome DevTools.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mockModel } from "./mock-upstream.js";
import { ROOT, runJob, startMock, holdStreams, cpuTree } from "./procs.js";
import { sleep } from "./util.js";
const door = (process.argv[2] ?? "sse") as "grpc" | "sse" | "ws";
if (!["grpc", "sse", "ws"].includes(door)) throw new Error(`door: sse, grpc or ws, not ${door}`);
const SLOW = { chunks: 1000, bytes: 16, delayMs: 5000, firstMs: 0 };
const shape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
const mock = await startMock();
const dir = mkdtempSync(join(tmpdir(), `spillway-refusal-prof-${door}-`));
const cfg = join(dir, "config.json");
writeFileSync(cfg, JSON.stringify({ http: { host: "127.0.0.1", port: 0 }, grpc: { host: "127.0.0.1", port: 0 }, limits: { maxConcurrentStreams: 4 }, routing: { maxAttempts: 1 }, providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mock.port}/v1`, models: ["m"] } }, realtime: { profiles: { "mock/rt": { stt: "local/stt", text: `mock/${mockModel(shape)}`, tts: "local/tts" } } } }));
const gw = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "--import", "tsx", "src/main.ts", "--config", cfg, "--workers", "1"], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "info" } });
let out = "";
const ports = await new Promise<{ http: number; grpc: number }>((resolve) => { gw.stdout.on("data", (d: Buffer) => { out += d.toString(); const line = out.split("\n").find((l) => l.includes("listening")); if (line) resolve(JSON.parse(line) as { http: number; grpc: number }); }); });
gw.stdout.resume();
const h = await holdStreams({ door: "sse", target: `http://127.0.0.1:${ports.http}`, model: `mock/${mockModel(SLOW)}`, expectChunks: 1, mode: "hold", count: 4 });
const target = door === "grpc" ? `127.0.0.1:${ports.grpc}` : door === "ws" ? `ws://127.0.0.1:${ports.http}/v1/realtime?model=mock/rt` : `http://127.0.0.1:${ports.http}`;
const c0 = cpuTree(gw.pid!);
const r = await runJob({ door, target, model: `mock/${mockModel(shape)}`, expectChunks: 20, mode: "closed", concurrency: 32, seconds: 5 });
console.log(`${door}: ${r.refused} refused, ${r.errors} errors, ${((cpuTree(gw.pid!) - c0) * 1000 / (r.refused ?? 1)).toFixed(0)} µs/refusal`);
await h.release();
gw.kill("SIGTERM"); await new Promise((res) => gw.once("exit", res)); await mock.stop(); await sleep(100);
const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(dir, f));
// The worker's profile is the biggest.
const file = files.sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const marker = door === "grpc" ? "src/doors/grpc" : door === "ws" ? "src/doors/ws" : "src/doors/http";
let first = -1, last = -1;
prof.samples.forEach((id, i) => { const u = byId.get(id)!.callFrame.url; if (u.includes(marker)) { if (first < 0) first = i; last = i; } });
// Steady phase only: from 1 s after the first door frame to the last.
let t = 0; const times = prof.timeDeltas.map((d) => (t += d));
const from = times[first]! + 1_000_000;
const hits = new Map<number, number>();
prof.samples.forEach((id, i) => { if (i >= first && i <= last && times[i]! >= from) hits.set(id, (hits.get(id) ?? 0) + 1); });
for (const n of prof.nodes) n.hitCount = hits.get(n.id) ?? 0;
const byFn = new Map<string, number>(); const byPkg = new Map<string, number>();
for (const n of prof.nodes) {
  const url = n.callFrame.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
  const k = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}`;
  byFn.set(k, (byFn.get(k) ?? 0) + (n.hitCount ?? 0));
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  const pkg = m ? m[1]! : url.startsWith("src/") ? url.split("/").slice(0, 3).join("/") : url.startsWith("node:") ? "node:" + url.slice(5).split("/")[0] : (n.callFrame.functionName || "(native/gc)");
  byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + (n.hitCount ?? 0));
}
const idle = byFn.get("(idle) :0") ?? 0;
const total = [...byFn.values()].reduce((a, b) => a + b, 0) - idle;
console.log("--- by package/area (excluding idle)");
for (const [k, v] of [...byPkg.entries()].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 18)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
console.log("--- top functions");
for (const [k, v] of [...byFn.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
console.log(file);
