/**
 * The cost of a stored stream over a plain one: Responses streams
 * (`POST /v1/responses`, `stream: true`) through one gateway process
 * (`--workers 1`) in front of the mock upstream, with `store: false`, with
 * the embedded log and with Redis; the gateway's CPU time (from
 * /proc/<pid>/stat) per stream, and chunks per second through Redis.
 *
 * Run: `tsx load/durable-bench.ts [--streams 2000] [--concurrency 50] [--chunks 50]`.
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

const { values } = parseArgs({ options: { streams: { type: "string", default: "2000" }, concurrency: { type: "string", default: "50" }, chunks: { type: "string", default: "50" } } });
const STREAMS = Number(values.streams);
const CONCURRENCY = Number(values.concurrency);
const CHUNKS = Number(values.chunks);

/** utime + stime of a process, in µs (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function gateway(mockPort: number, redisUrl: string | undefined): Promise<{ port: number; pid: number; stop: () => void }> {
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
  const child = spawn(process.execPath, [...TSX, join(ROOT, "src/main.ts"), "--config", config, "--workers", "1"], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, LOG_LEVEL: "info" } });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes("listening"));
      if (line) resolve((JSON.parse(line) as { http: number }).http);
    });
    child.once("exit", () => reject(new Error(out)));
  });
  return { port, pid: child.pid!, stop: () => child.kill("SIGKILL") };
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

async function measure(name: string, mockPort: number, redisUrl: string | undefined, store: boolean): Promise<Record<string, unknown>> {
  const gw = await gateway(mockPort, redisUrl);
  try {
    await run(gw.port, store); // warm-up (JIT, connection pools)
    const cpu0 = cpuMicros(gw.pid);
    const t0 = performance.now();
    const n = await run(gw.port, store);
    const ms = performance.now() - t0;
    const cpu = cpuMicros(gw.pid) - cpu0;
    const row = { row: name, streams: n, chunksPerStream: CHUNKS, cpuMicrosPerStream: Math.round(cpu / n), streamsPerSec: Math.round((n / ms) * 1000), chunksPerSec: Math.round(((n * (CHUNKS + 2)) / ms) * 1000) };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    gw.stop();
  }
}

const mock = await startMock();
const redis = await startRedis();
try {
  const plain = await measure("plain (store: false)", mock.port, undefined, false);
  const embedded = await measure("stored, embedded log", mock.port, undefined, true);
  const viaRedis = await measure("stored, Redis", mock.port, redis.url, true);
  const base = plain["cpuMicrosPerStream"] as number;
  console.log(
    JSON.stringify({
      embeddedOverPlain: Number(((embedded["cpuMicrosPerStream"] as number) / base).toFixed(2)),
      redisOverPlain: Number(((viaRedis["cpuMicrosPerStream"] as number) / base).toFixed(2)),
    }),
  );
} finally {
  await redis.stop();
  await mock.stop();
}
