/**
 * The cost of a stored stream over a plain one: Responses streams
 * (`POST /v1/responses`, `stream: true`) through one gateway process
 * (`--workers 1`) in front of the mock upstream, with `store: false`, with
 * the embedded log and with Redis; the gateway's CPU time (from
 * /proc/<pid>/stat) per stream, and chunks per second through Redis.
 *
 * Run: `tsx load/durable-bench.ts [--streams 2000] [--concurrency 50] [--chunks 50]
 * [--rows plain,embedded,redis] [--compare /path/to/other/tree] [--cpu-prof DIR]`.
 * With `--compare`, every row is also measured with the gateway of that
 * tree (e.g. a `git worktree add /tmp/before main`), alternating, in the same
 * run, and the before/after ratios are printed. `--cpu-prof DIR` runs each
 * gateway under `node --cpu-prof` (profiles land in DIR).
 * Needs redis-server on PATH for the Redis row. Prints one JSON line per row.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { request } from "undici";
import { mockModel } from "./mock-upstream.js";
import { ROOT, startMock, TSX } from "./procs.js";
import { startRedis } from "../test/helpers/redis.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "50" },
    chunks: { type: "string", default: "50" },
    rows: { type: "string", default: "plain,embedded,redis" },
    compare: { type: "string" },
    "cpu-prof": { type: "string" },
  },
});
const ROWS = new Set(values.rows.split(","));
const STREAMS = Number(values.streams);
const CONCURRENCY = Number(values.concurrency);
const CHUNKS = Number(values.chunks);

/** utime + stime of a process and its live descendants (a primary's workers), in µs (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  let us = (Number(fields[11]) + Number(fields[12])) * 10_000;
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ").filter(Boolean);
  } catch {
    // No children file (or the process is gone): itself only.
  }
  for (const c of children) us += cpuMicros(Number(c));
  return us;
}

async function gateway(root: string, mockPort: number, redisUrl: string | undefined, workers: number): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-durable-bench-"));
  const config = join(dir, "c.json");
  writeFileSync(
    config,
    JSON.stringify({
      http: { host: "127.0.0.1", port: 0 },
      grpc: { enabled: false },
      limits: { maxConcurrentStreams: 100_000 },
      routing: { maxAttempts: 1 },
      streams: { maxBackground: 100_000, maxBackgroundPerKey: 100_000 },
      providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${mockPort}/v1`, models: ["m"] } },
      ...(redisUrl ? { redis: { url: redisUrl, commandTimeoutMs: 2000 } } : {}),
    }),
  );
  const prof = values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-interval", "200", "--cpu-prof-dir", values["cpu-prof"]] : [];
  const child = spawn(process.execPath, [...prof, ...TSX, join(root, "src/main.ts"), "--config", config, "--workers", String(workers)], { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "info" } });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes("listening"));
      if (line) resolve((JSON.parse(line) as { http: number }).http);
    });
    child.once("exit", () => reject(new Error(out)));
  });
  const exited = new Promise((r) => child.once("exit", r));
  // SIGTERM (so a --cpu-prof profile is written), SIGKILL if it lingers.
  const stop = async (): Promise<void> => {
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(t);
  };
  return { port, pid: child.pid!, stop };
}

async function run(port: number, store: boolean): Promise<number> {
  const body = JSON.stringify({ model: `mock/${mockModel({ chunks: CHUNKS, bytes: 16, delayMs: 0, firstMs: 0 })}`, input: "bench", stream: true, store });
  let next = 0;
  let events = 0;
  const worker = async (): Promise<void> => {
    while (next++ < STREAMS) {
      const res = await request(`http://127.0.0.1:${port}/v1/responses`, { method: "POST", body, headers: { "content-type": "application/json" } });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes("response.completed")) throw new Error(`bad stream: ${res.statusCode} ${text.slice(0, 300)}`);
      events++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return events;
}

async function measure(name: string, root: string, mockPort: number, redisUrl: string | undefined, store: boolean, workers: number): Promise<Record<string, unknown>> {
  const gw = await gateway(root, mockPort, redisUrl, workers);
  try {
    await run(gw.port, store); // warm-up (JIT, connection pools)
    const cpu0 = cpuMicros(gw.pid);
    const t0 = performance.now();
    const n = await run(gw.port, store);
    const ms = performance.now() - t0;
    const cpu = cpuMicros(gw.pid) - cpu0;
    const row = { row: name, tree: root, streams: n, chunksPerStream: CHUNKS, cpuMicrosPerStream: Math.round(cpu / n), streamsPerSec: Math.round((n / ms) * 1000), chunksPerSec: Math.round(((n * (CHUNKS + 2)) / ms) * 1000) };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    await gw.stop();
  }
}

const ratio = (a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): number | undefined =>
  a && b ? Number(((a["cpuMicrosPerStream"] as number) / (b["cpuMicrosPerStream"] as number)).toFixed(2)) : undefined;

const KINDS = [
  { key: "plain", name: "plain (store: false)", redis: false, store: false, workers: 1 },
  { key: "embedded", name: "stored, embedded log", redis: false, store: true, workers: 1 },
  { key: "redis", name: "stored, Redis", redis: true, store: true, workers: 1 },
  // Opt-in (`--rows plain2,embedded2`): two workers, the embedded log held by the primary over IPC; CPU of all three processes.
  { key: "plain2", name: "plain (store: false), --workers 2", redis: false, store: false, workers: 2 },
  { key: "embedded2", name: "stored, embedded log over IPC, --workers 2", redis: false, store: true, workers: 2 },
] as const;

const mock = await startMock();
const redis = await startRedis();
try {
  const trees = values.compare ? [values.compare, ROOT] : [ROOT];
  const results: Array<Record<string, Record<string, unknown> | undefined>> = trees.map(() => ({}));
  // Row by row, alternating trees, so both see the same machine load.
  for (const kind of KINDS) {
    if (!ROWS.has(kind.key)) continue;
    for (const [i, root] of trees.entries()) results[i]![kind.key] = await measure(kind.name, root, mock.port, kind.redis ? redis.url : undefined, kind.store, kind.workers);
  }
  for (const [i, r] of results.entries()) {
    console.log(JSON.stringify({ tree: trees[i], embeddedOverPlain: ratio(r["embedded"], r["plain"]), redisOverPlain: ratio(r["redis"], r["plain"]), ipcOverPlainWith2Workers: ratio(r["embedded2"], r["plain2"]) }));
  }
  if (results.length === 2) {
    const [before, after] = results as [Record<string, Record<string, unknown> | undefined>, Record<string, Record<string, unknown> | undefined>];
    console.log(JSON.stringify({ afterOverBefore: Object.fromEntries(KINDS.filter((k) => ROWS.has(k.key)).map((k) => [k.key, ratio(after[k.key], before[k.key])])) }));
  }
} finally {
  await redis.stop();
  await mock.stop();
}
