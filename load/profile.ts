/**
 * `tsx load/profile.ts [--door sse|grpc|ws] [--seconds 5] [--concurrency 50] [--rate N] [--top 40]`:
 * CPU profile of the gateway's hot path. Runs the gateway with `--cpu-prof`
 * (one worker) against the mock while a closed-loop job (or, with `--rate`,
 * an open-loop job at N streams/s) streams through it,
 * then prints the functions with the most self time (the .cpuprofile is kept
 * in load/results/ for Chrome DevTools).
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Door } from "./loadgen.js";
import { mockModel } from "./mock-upstream.js";
import { ROOT, runJob, startMock } from "./procs.js";
import { sleep } from "./util.js";

const { values } = parseArgs({
  options: {
    door: { type: "string", default: "sse" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "50" },
    top: { type: "string", default: "40" },
    chunks: { type: "string", default: "200" },
    delay: { type: "string", default: "0" },
    rate: { type: "string" },
  },
});

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const shape = { chunks: Number(values.chunks), bytes: 16, delayMs: Number(values.delay), firstMs: 0 };
const mock = await startMock();
const dir = join(ROOT, "load/results/profiles");
mkdirSync(dir, { recursive: true });
const cfg = join(tmpdir(), `spillway-profile-${process.pid}.json`);
writeFileSync(
  cfg,
  JSON.stringify({
    http: { host: "127.0.0.1", port: 0 },
    grpc: { host: "127.0.0.1", port: 0 },
    limits: { maxConcurrentStreams: 100_000 },
    providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mock.port}/v1`, models: ["m"] } },
    realtime: { profiles: { "mock/rt": { stt: "local/stt", text: `mock/${mockModel(shape)}`, tts: "local/tts" } } },
  }),
);
const before = new Set(readdirSync(dir));
const gw = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "--import", "tsx", "src/main.ts", "--config", cfg, "--workers", "1"], {
  cwd: ROOT,
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, LOG_LEVEL: "info" },
});
let out = "";
const ports = await new Promise<{ http: number; grpc: number }>((resolve) => {
  gw.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    const line = out.split("\n").find((l) => l.includes("listening"));
    if (line) resolve(JSON.parse(line) as { http: number; grpc: number });
  });
});
const door = values.door as Door;
const target = door === "grpc" ? `127.0.0.1:${ports.grpc}` : door === "ws" ? `ws://127.0.0.1:${ports.http}/v1/realtime?model=mock/rt` : `http://127.0.0.1:${ports.http}`;
const r = await runJob({ door, target, model: `mock/${mockModel(shape)}`, expectChunks: shape.chunks, ...(values.rate ? { mode: "rate" as const, rate: Number(values.rate) } : { mode: "closed" as const, concurrency: Number(values.concurrency) }), seconds: Number(values.seconds) });
console.log(`${r.ok} streams, ${Math.round(r.chunks / r.elapsedS)} chunks/s, errors ${r.errors}, TTFT p50 ${r.ttft.p50?.toFixed(2) ?? "–"} ms p99 ${r.ttft.p99?.toFixed(2) ?? "–"} ms`);
gw.kill("SIGTERM");
await new Promise((res) => gw.once("exit", res));
await mock.stop();
await sleep(100);
const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith(".0.001.cpuprofile"));
if (!file) throw new Error("no profile written");
const prof = JSON.parse(readFileSync(join(dir, file), "utf8")) as { nodes: Node[]; samples: number[] };
const self = new Map<string, number>();
for (const n of prof.nodes) {
  const url = n.callFrame.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
  const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
for (const [k, v] of rows) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
console.log(`profile: ${join(dir, file)}`);
