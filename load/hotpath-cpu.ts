/**
 * `tsx load/hotpath-cpu.ts [--before DIR] [--seconds 8] [--rounds 2] [--connections 32] [--modes json,sse,sse10] [--nginx]`:
 * a private before/after driver for the HTTP hot path (issue 16, item 2).
 * Starts the mock upstream, one Spillway (`--workers 1`) per tree (this one
 * and `--before`), and optionally nginx as a pure relay; then, for each
 * round and mode, runs autocannon against each target in turn (alternating
 * the order every round so host noise hits them alike) and prints each
 * target's user+system CPU (from /proc) per completed request, and the
 * mock's. Each target gets a warm-up run first (not counted).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { autocannon, type AutocannonResult } from "./hotpath-autocannon.js";
import { cpuTree, startMock, startSpillway } from "./procs.js";
import { sleep } from "./util.js";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    modes: { type: "string", default: "json,sse" },
    nginx: { type: "boolean", default: false },
    /** Requests per second over all connections (autocannon overallRate); closed loop when absent. */
    rate: { type: "string" },
    /** Extra environment for this tree's gateway (`K=V,K=V`), for experiments. */
    env: { type: "string", default: "" },
  },
});

interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** The model name this target expects (Spillway: `mock/…`, nginx: the mock's own). */
  readonly prefix: string;
  stop(): Promise<void>;
}

/** `json`: non-streamed; `sse`: streamed, the mock's 20 chunks in one write; `sseN`: streamed, chunks N ms apart (one upstream read each). */
function body(mode: string, prefix: string): string {
  const delay = mode.startsWith("sse") ? Number(mode.slice(3) || "0") : 0;
  const b: Record<string, unknown> = { model: `${prefix}m-c20-b16-d${delay}-f0`, messages: [{ role: "user", content: "hi" }] };
  if (mode.startsWith("sse")) b["stream"] = true;
  return JSON.stringify(b);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startNginx(mockPort: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "hotpath-nginx-"));
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn; daemon off;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream mock { server 127.0.0.1:${mockPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
`,
  );
  const child: ChildProcess = spawn("/usr/sbin/nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
  await sleep(500);
  return {
    name: "nginx",
    port,
    pid: child.pid!,
    prefix: "",
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

function run(t: Target, mode: string, seconds: number): Promise<AutocannonResult> {
  return autocannon({
    url: `http://127.0.0.1:${t.port}/v1/chat/completions`,
    connections: Number(values.connections),
    duration: seconds,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body(mode, t.prefix),
    ...(values.rate ? { overallRate: Number(values.rate) } : {}),
  });
}

const mock = await startMock();
const targets: Target[] = [];
const env = Object.fromEntries(values.env.split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
const after = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, env });
targets.push({ name: "after", port: after.httpPort, pid: after.child.pid!, prefix: "mock/", stop: () => after.stop() });
if (values.before) {
  const before = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, root: values.before });
  targets.push({ name: "before", port: before.httpPort, pid: before.child.pid!, prefix: "mock/", stop: () => before.stop() });
}
if (values.nginx) targets.push(await startNginx(mock.port));

const modes = values.modes.split(",");
const seconds = Number(values.seconds);
console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(" ")}; ${values.connections} connections, ${seconds} s per run`);
for (const t of targets) for (const m of modes) await run(t, m, Number(values.warmup));

const samples = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  const order = round % 2 === 0 ? targets : [...targets].reverse();
  for (const mode of modes) {
    for (const t of order) {
      const cpu0 = cpuTree(t.pid);
      const mock0 = cpuTree(mock.child.pid!);
      const r = await run(t, mode, seconds);
      const cpu = cpuTree(t.pid) - cpu0;
      const mockCpu = cpuTree(mock.child.pid!) - mock0;
      const ok = r["2xx"];
      const line = `round ${round + 1} ${mode.padEnd(4)} ${t.name.padEnd(7)} ${((cpu * 1000) / ok).toFixed(1).padStart(6)} µs/req  mock ${((mockCpu * 1000) / ok).toFixed(1).padStart(6)} µs/req  ${Math.round(ok / seconds)} req/s  non2xx ${r.non2xx} errors ${r.errors}  p50 ${r.latency.p50} ms`;
      console.log(line);
      const key = `${mode} ${t.name}`;
      samples.set(key, [...(samples.get(key) ?? []), (cpu * 1000) / ok]);
    }
  }
}
console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (const [key, xs] of samples) {
  const sorted = [...xs].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  console.log(`median ${key.padEnd(14)} ${median.toFixed(1).padStart(6)} µs/req  (min ${sorted[0]!.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}, n ${xs.length})`);
}
// Per-round ratios of each other target to this tree (host noise hits a round's turns alike), and their median.
for (const mode of modes) {
  const mine = samples.get(`${mode} after`);
  if (!mine) continue;
  for (const t of targets) {
    const theirs = samples.get(`${mode} ${t.name}`);
    if (t.name === "after" || !theirs) continue;
    const ratios = mine.map((v, i) => v / theirs[i]!);
    const sorted = [...ratios].sort((a, b) => a - b);
    const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
    console.log(`after / ${t.name} ${mode}: median ${median.toFixed(2)}× (per round ${ratios.map((r) => r.toFixed(2)).join(" ")})`);
  }
}
for (const t of targets) await t.stop();
await mock.stop();
