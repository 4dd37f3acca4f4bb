/**
 * `tsx load/hotpath-profile.ts ROOT MODE SECONDS [CHUNKS=20]`: CPU profile of one gateway tree (ROOT) under
 * autocannon (32 connections; MODE json, sse or sseN as in hotpath-cpu.ts); prints self time, a
 * by-file aggregate and inclusive time per function (issue 16 hot path work). ROOT `floor`:
 * profiles load/node-floor.ts (the Node floor: uWS in, undici out; `floor:dispatch`, `floor:net`: its
 * `--client`) instead, with model ids
 * without the `mock/` prefix.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autocannon } from "./hotpath-autocannon.js";
import { startMock } from "./procs.js";

const [root, mode, secs, chunks] = [process.argv[2]!, process.argv[3] ?? "json", Number(process.argv[4] ?? "8"), Number(process.argv[5] ?? "20")];
const mock = await startMock();
const dir = mkdtempSync(join(tmpdir(), "hp-prof-"));
const cfg = join(dir, "c.json");
writeFileSync(cfg, JSON.stringify({ http: { host: "127.0.0.1", port: 0 }, grpc: { host: "127.0.0.1", port: 0 }, limits: { maxConcurrentStreams: 100000, idleTimeoutMs: 120000, adaptiveConcurrency: { enabled: false } }, routing: { maxAttempts: 1 }, shutdown: { graceMs: 0 }, providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mock.port}/v1`, models: ["m"] } } }));
const floor = root === "floor" || root.startsWith("floor:");
const prof = ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "200", "--import", "tsx"];
const gw = floor
  ? spawn(process.execPath, [...prof, "load/node-floor.ts", "--upstream", `http://127.0.0.1:${mock.port}`, "--client", root.slice("floor:".length) || "request"], { stdio: ["ignore", "pipe", "inherit"] })
  : spawn(process.execPath, [...prof, "src/main.ts", "--config", cfg, "--workers", "1"], { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "info" } });
let out = "";
const port = await new Promise<number>((resolve) => gw.stdout.on("data", (d: Buffer) => { out += d.toString(); const l = out.split("\n").find((x) => x.includes("listening") || x.startsWith('{"port"')); if (l && out.length < 1e6) { const j = JSON.parse(l) as { http?: number; port?: number }; resolve(j.http ?? j.port!); out = "x".repeat(1e6); } }));
const delay = mode.startsWith("sse") ? Number(mode.slice(3) || "0") : 0;
const b: Record<string, unknown> = { model: `${floor ? "" : "mock/"}m-c${chunks}-b16-d${delay}-f0`, messages: [{ role: "user", content: "hi" }] };
if (mode.startsWith("sse")) b["stream"] = true;
const r = await autocannon({ url: `http://127.0.0.1:${port}/v1/chat/completions`, connections: 32, duration: secs, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
console.log(`${r["2xx"]} ok, ${r.non2xx} non2xx`);
gw.kill("SIGTERM");
await new Promise((res) => gw.once("exit", res));
await mock.stop();
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
interface N { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as { nodes: N[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
// Only samples taken while the load ran (not start-up or shutdown): hit counts rebuilt from the samples in the window.
{
  let t = profile.startTime;
  const from = profile.endTime - (secs - 0.5) * 1e6;
  const until = profile.endTime - 0.3e6;
  const hits = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i]!;
    if (t >= from && t <= until) hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  for (const n of profile.nodes) n.hitCount = hits.get(n.id) ?? 0;
}
const windowShare = (secs - 0.8) / secs;
const self = new Map<string, number>();
const byFile = new Map<string, number>();
const short = (u: string) => u.replace(/^file:\/\//, "").replace(`${root}/`, "").replace(/.*node_modules\//, "nm/");
for (const n of profile.nodes) {
  const url = short(n.callFrame.url);
  const key = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
  const f = url.split("/").slice(0, 3).join("/") || n.callFrame.functionName;
  byFile.set(f, (byFile.get(f) ?? 0) + (n.hitCount ?? 0));
}
// inclusive time
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const incl = new Map<string, number>();
function walk(n: N, stack: Set<string>): number {
  let t = n.hitCount ?? 0;
  for (const c of n.children ?? []) {
    const cn = byId.get(c)!;
    const key = `${cn.callFrame.functionName || "(anon)"} ${short(cn.callFrame.url)}:${cn.callFrame.lineNumber + 1}`;
    const had = stack.has(key); stack.add(key);
    const ct = walk(cn, stack);
    if (!had) { incl.set(key, (incl.get(key) ?? 0) + ct); stack.delete(key); }
    t += ct;
  }
  return t;
}
walk(profile.nodes[0]!, new Set());
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = self.get("(idle) :0") ?? 0;
console.log(`samples ${total}, idle ${((idle / total) * 100).toFixed(1)}%; per request non-idle µs ≈ ${(((total - idle) * 200) / (r["2xx"] * windowShare)).toFixed(1)}`);
const pct = (v: number) => (((v / (total - idle)) * 100).toFixed(1) + "%").padStart(6);
console.log("--- self");
for (const [k, v] of [...self.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 45))) console.log(`${pct(v)} ${k}`);
console.log("--- by file");
for (const [k, v] of [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${pct(v)} ${k}`);
console.log("--- inclusive");
for (const [k, v] of [...incl.entries()].filter(([k]) => !k.startsWith("(")).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.ITOP ?? 60))) console.log(`${pct(v)} ${k}`);
console.log(join(dir, file));
