/**
 * Is better-sqlite3 12 a better embedded stream log than the primary's
 * in-memory log over IPC (issue 15)? Measures, for streams of `--chunks`
 * chunks (protobuf text chunks of 16 characters, as the durable bench's):
 *
 * - **write**: CPU µs per stream to record it (create, append every chunk,
 *   final status) — in-process `MemoryStreamLog`; a worker recording through
 *   `Recording` + `IpcStreamLog` to the primary (worker and primary CPU
 *   both, as `--workers N` runs it); SQLite (WAL, `synchronous=NORMAL`, a
 *   file in tmpdir) with one `INSERT` per chunk, and with one transaction per
 *   event-loop turn's batch (`--batch` chunks).
 * - **read back**: µs to replay one finished stream.
 * - **follow from another process**: a writer appends one chunk every
 *   `--gap` ms; a follower in another process gets them — pushed by the
 *   primary over IPC, or by polling SQLite every `--poll` ms (SQLite has no
 *   cross-process notification) — delivery delay p50/p99 and the follower's
 *   CPU per second while it follows.
 *
 * Run: `tsx load/sqlite-log-bench.ts [--streams 2000] [--chunks 52] [--batch 10] [--gap 10] [--poll 5]`.
 * Needs better-sqlite3 (`npm install --no-save better-sqlite3@12`); it is
 * not a dependency. Prints one JSON line per row.
 */
import cluster from "node:cluster";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DurableStreams, encodeChunk } from "../src/engine/durable/durable-streams.js";
import { MemoryStreamLog } from "../src/engine/durable/memory-stream-log.js";
import type { LogEntry, StreamLog } from "../src/engine/durable/stream-log.js";
import type { EngineStream } from "../src/engine/active-stream.js";
import { Finish_Reason, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import { IpcStreamLog, serveStreamLog } from "../src/workers/stream-log-ipc.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "2000" },
    chunks: { type: "string", default: "52" },
    batch: { type: "string", default: "10" },
    gap: { type: "string", default: "10" },
    poll: { type: "string", default: "5" },
    follow: { type: "string", default: "200" },
  },
});
const STREAMS = Number(values.streams);
const CHUNKS = Number(values.chunks);
const BATCH = Number(values.batch);
const GAP = Number(values.gap);
const POLL = Number(values.poll);
const FOLLOW = Number(values.follow);

interface Db {
  exec(sql: string): void;
  pragma(p: string): unknown;
  prepare(sql: string): { run(...a: unknown[]): unknown; all(...a: unknown[]): Array<Record<string, unknown>>; get(...a: unknown[]): Record<string, unknown> | undefined };
  transaction<T extends (...a: never[]) => void>(fn: T): T;
  close(): void;
}
type DbCtor = new (file: string) => Db;
const Database = createRequire(import.meta.url)("better-sqlite3") as DbCtor;

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

function chunkOf(id: string, seq: number): Chunk {
  return seq < CHUNKS - 1
    ? { streamId: id, seq, payload: { $case: "text", value: { text: "abcdefghijklmnop" } } }
    : { streamId: id, seq, payload: { $case: "finish", value: { reason: Finish_Reason.REASON_STOP, stopSequence: "" } } };
}
const idOf = (run: string, i: number): string => `${run}${String(i).padStart(10, "0")}`.padEnd(32, "0");
const fakeStream = { cancel: () => undefined } as unknown as EngineStream;

/** Records STREAMS streams through a Recording (the gateway's path), waiting a macrotask every BATCH chunks (one upstream read). */
async function recordAll(streams: DurableStreams, run: string): Promise<void> {
  for (let i = 0; i < STREAMS; i++) {
    const id = idOf(run, i);
    const rec = streams.reserve(id, "0:bench", false);
    await rec.open("{}");
    for (let s = 0; s < CHUNKS; s++) {
      rec.record(fakeStream, chunkOf(id, s));
      if (s % BATCH === BATCH - 1) await new Promise((r) => setImmediate(r));
    }
    await rec.end(fakeStream);
  }
}

function sqliteOpen(file: string): Db {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE IF NOT EXISTS rec (id TEXT PRIMARY KEY, owner TEXT, status TEXT, request TEXT, created INTEGER, ended INTEGER)");
  db.exec("CREATE TABLE IF NOT EXISTS log (id TEXT, seq INTEGER, at REAL, chunk BLOB, last INTEGER, PRIMARY KEY (id, seq)) WITHOUT ROWID");
  return db;
}

/** SQLite write row: per chunk, or one transaction per BATCH chunks. */
async function sqliteWrite(file: string, batched: boolean): Promise<number> {
  const db = sqliteOpen(file);
  const create = db.prepare("INSERT INTO rec (id, owner, status, request, created) VALUES (?, ?, 'in_progress', '{}', ?)");
  const insert = db.prepare("INSERT INTO log (id, seq, at, chunk, last) VALUES (?, ?, ?, ?, ?)");
  const status = db.prepare("UPDATE rec SET status = ?, ended = ? WHERE id = ?");
  const many = db.transaction((rows: LogEntry[], id: string) => {
    for (const e of rows) insert.run(id, e.seq, e.at, e.chunk, e.last ? 1 : 0);
  });
  const run = batched ? "b" : "p";
  const t0 = cpuUs();
  for (let i = 0; i < STREAMS; i++) {
    const id = idOf(run, i);
    create.run(id, "0:bench", Date.now());
    let pending: LogEntry[] = [];
    for (let s = 0; s < CHUNKS; s++) {
      const c = chunkOf(id, s);
      const e: LogEntry = { seq: s, at: Date.now(), chunk: encodeChunk(c), last: s === CHUNKS - 1 };
      if (!batched) insert.run(id, e.seq, e.at, e.chunk, e.last ? 1 : 0);
      else pending.push(e);
      if (s % BATCH === BATCH - 1 || s === CHUNKS - 1) {
        if (batched) {
          many(pending, id);
          pending = [];
        }
        await new Promise((r) => setImmediate(r));
      }
    }
    status.run("completed", Date.now(), id);
  }
  const us = (cpuUs() - t0) / STREAMS;
  // Read back: replay one finished stream.
  const read = db.prepare("SELECT seq, at, chunk, last FROM log WHERE id = ? AND seq > ? ORDER BY seq");
  const r0 = performance.now();
  for (let i = 0; i < 500; i++) read.all(idOf(run, i), -1);
  const readUs = ((performance.now() - r0) * 1000) / 500;
  db.close();
  return report(batched ? `SQLite, one transaction per ${BATCH}-chunk batch` : "SQLite, INSERT per chunk", us, readUs);
}

function report(row: string, writeUs: number, readUs?: number, extra: Record<string, unknown> = {}): number {
  console.log(JSON.stringify({ row, streams: STREAMS, chunksPerStream: CHUNKS, writeCpuMicrosPerStream: Math.round(writeUs), ...(readUs !== undefined ? { readBackMicrosPerStream: Math.round(readUs) } : {}), ...extra }));
  return writeUs;
}

async function memoryRow(): Promise<void> {
  const log = new MemoryStreamLog({ maxCount: STREAMS * 4, maxBytes: 2 ** 31 });
  const streams = new DurableStreams({ log });
  await recordAll(streams, "w"); // warm-up
  const t0 = cpuUs();
  await recordAll(streams, "m");
  const us = (cpuUs() - t0) / STREAMS;
  const r0 = performance.now();
  for (let i = 0; i < 500; i++) for await (const _ of log.read(idOf("m", i), -1, new AbortController().signal, false)) void _;
  report("embedded, in-process (MemoryStreamLog)", us, ((performance.now() - r0) * 1000) / 500);
}

/** Worker side of the IPC rows: records, reports its CPU; or follows a stream another worker writes. */
async function worker(): Promise<void> {
  const log: StreamLog = new IpcStreamLog();
  const role = process.env["BENCH_ROLE"];
  if (role === "write") {
    const streams = new DurableStreams({ log });
    await recordAll(streams, "x"); // warm-up
    const t0 = cpuUs();
    await recordAll(streams, "i");
    const us = (cpuUs() - t0) / STREAMS;
    const r0 = performance.now();
    for (let i = 0; i < 200; i++) for await (const _ of log.read(idOf("i", i), -1, new AbortController().signal, false)) void _;
    process.send!({ type: "bench", us, readUs: ((performance.now() - r0) * 1000) / 200 });
    return;
  }
  if (role === "slow-write") {
    const streams = new DurableStreams({ log });
    const rec = streams.reserve("f".repeat(32), "0:bench", false);
    await rec.open("{}");
    // Writes start once the follower follows (so no delay counts its start-up).
    const go = new Promise<void>((r) => process.on("message", (m: { type?: string }) => m.type === "go" && r()));
    process.send!({ type: "bench-open" });
    await go;
    for (let s = 0; s < FOLLOW; s++) {
      rec.record(fakeStream, { ...chunkOf("f".repeat(32), s), payload: s === FOLLOW - 1 ? chunkOf("", CHUNKS - 1).payload : chunkOf("", 0).payload });
      await new Promise((r) => setTimeout(r, GAP));
    }
    await rec.end(fakeStream);
    return;
  }
  // follow
  const delays: number[] = [];
  const t0 = cpuUs();
  const w0 = performance.now();
  process.send!({ type: "following" });
  for await (const e of log.read("f".repeat(32), -1, new AbortController().signal)) delays.push(Date.now() - e.at);
  process.send!({ type: "bench", delays, cpuPerSec: (cpuUs() - t0) / ((performance.now() - w0) / 1000) });
}

async function ipcRows(): Promise<void> {
  serveStreamLog(new MemoryStreamLog({ maxCount: STREAMS * 4, maxBytes: 2 ** 31 }));
  const fork = (role: string): ReturnType<typeof cluster.fork> => cluster.fork({ BENCH_ROLE: role });
  const result = (w: ReturnType<typeof cluster.fork>): Promise<Record<string, unknown>> =>
    new Promise((resolve) => w.on("message", (m: { type: string }) => m.type === "bench" && resolve(m)));
  const writer = fork("write");
  const p0 = cpuUs();
  const r = (await result(writer)) as { us: number; readUs: number };
  const primaryUs = (cpuUs() - p0) / (2 * STREAMS); // warm-up and measured runs both went through the primary
  writer.kill();
  report("embedded over IPC (worker → primary), worker CPU", r.us, r.readUs, { primaryCpuMicrosPerStream: Math.round(primaryUs), totalCpuMicrosPerStream: Math.round(r.us + primaryUs) });

  const slow = fork("slow-write");
  await new Promise<void>((res) => slow.on("message", (m: { type: string }) => m.type === "bench-open" && res()));
  const follower = fork("follow");
  follower.on("message", (m: { type: string }) => m.type === "following" && slow.send({ type: "go" }));
  const f = (await result(follower)) as { delays: number[]; cpuPerSec: number };
  follower.kill();
  slow.kill();
  console.log(JSON.stringify({ row: "follow from another worker: IPC push", chunks: f.delays.length, delayMsP50: pct(f.delays, 50), delayMsP99: pct(f.delays, 99), followerCpuMicrosPerSec: Math.round(f.cpuPerSec) }));
}

/** SQLite follow: a writer process appends every GAP ms; this one polls every POLL ms. */
async function sqliteFollow(file: string): Promise<void> {
  const { fork } = await import("node:child_process");
  const db = sqliteOpen(file);
  const id = "s".repeat(32);
  db.prepare("INSERT INTO rec (id, owner, status, request, created) VALUES (?, '0:bench', 'in_progress', '{}', ?)").run(id, Date.now());
  const child = fork(new URL(import.meta.url).pathname, [], { env: { ...process.env, BENCH_ROLE: "sqlite-writer", BENCH_DB: file }, execArgv: ["--import", "tsx"] });
  const next = db.prepare("SELECT seq, at, last FROM log WHERE id = ? AND seq > ? ORDER BY seq");
  const delays: number[] = [];
  let last = -1;
  const t0 = cpuUs();
  const w0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      for (const row of next.all(id, last)) {
        last = row["seq"] as number;
        delays.push(Date.now() - (row["at"] as number));
        if (row["last"] === 1) return resolve();
      }
      setTimeout(tick, POLL);
    };
    tick();
  });
  const cpuPerSec = (cpuUs() - t0) / ((performance.now() - w0) / 1000);
  child.kill();
  db.close();
  console.log(JSON.stringify({ row: `follow from another process: SQLite, polling every ${POLL} ms`, chunks: delays.length, delayMsP50: pct(delays, 50), delayMsP99: pct(delays, 99), followerCpuMicrosPerSec: Math.round(cpuPerSec) }));
}

async function sqliteWriter(): Promise<void> {
  const db = sqliteOpen(process.env["BENCH_DB"]!);
  const insert = db.prepare("INSERT INTO log (id, seq, at, chunk, last) VALUES (?, ?, ?, ?, ?)");
  const id = "s".repeat(32);
  await new Promise((r) => setTimeout(r, 200));
  for (let s = 0; s < FOLLOW; s++) {
    insert.run(id, s, Date.now(), encodeChunk(chunkOf(id, 0)), s === FOLLOW - 1 ? 1 : 0);
    await new Promise((r) => setTimeout(r, GAP));
  }
  db.close();
}

if (process.env["BENCH_ROLE"] === "sqlite-writer") await sqliteWriter();
else if (cluster.isWorker) await worker();
else {
  const dir = mkdtempSync(join(tmpdir(), "spillway-sqlite-bench-"));
  try {
    await memoryRow();
    await ipcRows();
    await sqliteWrite(join(dir, "a.db"), false);
    await sqliteWrite(join(dir, "b.db"), true);
    await sqliteFollow(join(dir, "c.db"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
  }
}
