/**
 * `tsx load/hotpath-alloc.ts ROOT|floor MODE`: bytes allocated per request by function (issue 16).
 * Starts the mock and one target (a Spillway tree, `--workers 1`, or `floor`: load/node-floor.ts)
 * with `hotpath-alloc-sampler.ts` preloaded, warms it up (3 s of autocannon), then samples the heap over
 * a run of `SECONDS` (default 6; 32 connections, MODE json / sse / sseN; collected objects included)
 * and prints the allocating functions: self bytes per completed request of that run, and by file. GC is a large part of what Spillway
 * pays beyond the Node floor (main thread and V8's helper threads: see hotpath-threads.ts).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autocannon } from "./hotpath-autocannon.js";
import { startMock } from "./procs.js";
import { sleep } from "./util.js";

const [root, mode, secs] = [process.argv[2]!, process.argv[3] ?? "json", Number(process.argv[4] ?? "6")];
const mock = await startMock();
const dir = mkdtempSync(join(tmpdir(), "hp-alloc-"));
const cfg = join(dir, "c.json");
const outFile = join(dir, "alloc.json");
writeFileSync(cfg, JSON.stringify({ http: { host: "127.0.0.1", port: 0 }, grpc: { host: "127.0.0.1", port: 0 }, limits: { maxConcurrentStreams: 100000, idleTimeoutMs: 120000, adaptiveConcurrency: { enabled: false } }, routing: { maxAttempts: 1 }, shutdown: { graceMs: 0 }, providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mock.port}/v1`, models: ["m"] } } }));
const floor = root === "floor";
const sampler = join(import.meta.dirname, "hotpath-alloc-sampler.ts");
const env = { ...process.env, LOG_LEVEL: "info", ALLOC_OUT: outFile };
const gw = floor
  ? spawn(process.execPath, ["--import", "tsx", "--import", sampler, "load/node-floor.ts", "--upstream", `http://127.0.0.1:${mock.port}`], { stdio: ["ignore", "pipe", "inherit"], env })
  : spawn(process.execPath, ["--import", "tsx", "--import", sampler, "src/main.ts", "--config", cfg, "--workers", "1"], { cwd: root, stdio: ["ignore", "pipe", "inherit"], env });
let out = "";
const port = await new Promise<number>((resolve) => gw.stdout.on("data", (d: Buffer) => { out += d.toString(); const l = out.split("\n").find((x) => x.includes("listening") || x.startsWith('{"port"')); if (l && out.length < 1e6) { const j = JSON.parse(l) as { http?: number; port?: number }; resolve(j.http ?? j.port!); out = "x".repeat(1e6); } }));
const delay = mode.startsWith("sse") ? Number(mode.slice(3) || "0") : 0;
const b: Record<string, unknown> = { model: `${floor ? "" : "mock/"}m-c20-b16-d${delay}-f0`, messages: [{ role: "user", content: "hi" }] };
if (mode.startsWith("sse")) b["stream"] = true;
const run = (duration: number) => autocannon({ url: `http://127.0.0.1:${port}/v1/chat/completions`, connections: 32, duration, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
await run(3);
gw.kill("SIGUSR2");
await sleep(300);
const r = await run(secs);
gw.kill("SIGUSR2");
const started = Date.now();
while (!existsSync(outFile) && Date.now() - started < 20_000) await sleep(200);
gw.kill("SIGTERM");
await new Promise((res) => gw.once("exit", res));
await mock.stop();
interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
const profile = JSON.parse(readFileSync(outFile, "utf8")) as { head: Node };
const perReq = r["2xx"];
const self = new Map<string, number>();
const byFile = new Map<string, number>();
const short = (u: string) => u.replace(/^file:\/\//, "").replace(`${root}/`, "").replace(/.*node_modules\//, "nm/");
let total = 0;
(function walk(n: Node): void {
  const url = short(n.callFrame.url);
  const key = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n.selfSize);
  const f = url.split("/").slice(0, 3).join("/") || n.callFrame.functionName;
  byFile.set(f, (byFile.get(f) ?? 0) + n.selfSize);
  total += n.selfSize;
  for (const c of n.children) walk(c);
})(profile.head);
console.log(`${r["2xx"]} ok in ${secs} s; allocated ≈ ${(total / perReq).toFixed(0)} bytes per request (sampled)`);
console.log("--- self bytes per request");
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env["TOP"] ?? 50))) console.log(`${(v / perReq).toFixed(0).padStart(7)} ${k}`);
console.log("--- by file");
for (const [k, v] of [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(v / perReq).toFixed(0).padStart(7)} ${k}`);
