/**
 * The load generator process (forked by bench.ts, one per job, talking over
 * IPC): runs one job against one target and reports a {@link JobResult}.
 *
 * - `rate`: open loop. Streams start on a fixed schedule (`rate` per second
 *   for `seconds`) whether or not earlier ones have finished, and latency is
 *   counted from each stream's scheduled start, so a stalled target cannot
 *   hide its stall by slowing the generator (no coordinated omission).
 * - `closed`: `concurrency` streams back to back for `seconds` (throughput).
 * - `hold`: opens `count` streams, reports `held` once each has its first
 *   chunk, keeps them open until told `release` (memory per open stream).
 *
 * Every job ends by itself: scheduling stops after `seconds`, and streams
 * still running `drainMs` later are counted as errors.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createGrpcClient } from "./clients/grpc.js";
import { createHttpClient } from "./clients/http.js";
import type { Held, LoadClient, Outcome } from "./clients/types.js";
import { createLeanGrpcClient } from "./clients/lean-grpc.js";
import { createLeanHttpClient } from "./clients/lean-http.js";
import { createLeanWsClient } from "./clients/lean-ws.js";
import { createWsClient } from "./clients/ws.js";
import { summarize, type Summary } from "./stats.js";
import { assertLoopback, isMain, sleep } from "./util.js";

/** Which door a job talks to. */
export type Door = "sse" | "json" | "grpc" | "ws";

/**
 * Which client implementation a job uses: `lean` (load/clients/lean-*.ts:
 * raw sockets for HTTP and realtime, node:http2 for gRPC, pre-rendered
 * requests; the default) or `classic` (node:http, the generated grpc-js
 * client, the `ws` package: what the generator used before, kept to compare
 * with, load/loadgen-cost.ts).
 */
export type ClientKind = "lean" | "classic";

/** One job for the load generator. */
export interface Job {
  readonly door: Door;
  /** `http://127.0.0.1:P`, `127.0.0.1:P` (gRPC) or `ws://127.0.0.1:P/v1/realtime?model=…`. */
  readonly target: string;
  readonly model: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly expectChunks: number;
  readonly mode: "rate" | "closed" | "hold";
  readonly rate?: number;
  readonly concurrency?: number;
  readonly seconds?: number;
  readonly count?: number;
  /** How long after the schedule ends streams may still finish. Default 10 000. */
  readonly drainMs?: number;
  /** Realtime door: count latency from the scheduled start, session setup included (see load/clients/ws.ts). */
  readonly fromSchedule?: boolean;
  /** Client implementation (default `lean`). */
  readonly client?: ClientKind;
  /** Length of a window of {@link JobResult.ttftWindowP99} (ms; default {@link WINDOW_MS}). */
  readonly windowMs?: number;
}

/** What a `rate` or `closed` job measured. */
export interface JobResult {
  readonly started: number;
  readonly ok: number;
  /** Failures, refusals not included. */
  readonly errors: number;
  /** Refused as over capacity (HTTP 503 + Retry-After, gRPC UNAVAILABLE, realtime `server_overloaded`). Absent in older results. */
  readonly refused?: number;
  /** From each refused request's actual send (realtime: its `response.create`) to the refusal, ms. */
  readonly refusal?: Summary;
  /** A few distinct error messages. */
  readonly errorSamples: readonly string[];
  /** Latency to the first chunk (whole response for `json`), ms. */
  readonly ttft: Summary;
  /** Content chunks received. */
  readonly chunks: number;
  /** Wall time from the first start to the last end, s. */
  readonly elapsedS: number;
  /** Streams that started more than 5 ms after their scheduled time (generator overloaded). */
  readonly lateStarts: number;
  /** CPU time the load generator itself used during the job (ms). */
  readonly loadgenCpuMs?: number;
  /** Streams still running at the drain limit (counted in `errors` too). Absent in older results. */
  readonly unfinished?: number;
  /**
   * The load generator's own event-loop delay during a `rate` job (p99 and
   * max, ms; 1 ms resolution): a generator whose loop is behind starts
   * streams late and sees first chunks late, so latency then measures it.
   */
  readonly loadgenDelay?: { readonly p99: number; readonly max: number };
  /**
   * TTFT of the `rate` job's served streams scheduled at least 1 s after its
   * start: the steady state, without the surge of the first second (when an
   * adaptive limit has not yet reacted). Absent in older results.
   */
  readonly ttftSteady?: Summary;
  /**
   * TTFT p99 of the `rate` job's served streams per window ({@link Job.windowMs}, default {@link WINDOW_MS})
   * of the schedule (by scheduled start; a last window shorter than half of
   * one is left out): the unloaded run's divisor is their median
   * (load/overload-capacity.ts `unloadedDivisor`). Absent in older results.
   */
  readonly ttftWindowP99?: readonly number[];
  /**
   * Streams of a `rate` job not started because the generator already had
   * {@link MAX_OPEN} streams open (its open-file limit would have failed them
   * with EMFILE): the target was that far behind. Absent in older results.
   */
  readonly skipped?: number;
  /** How late the latest stream started after its scheduled time (ms). */
  readonly maxLateMs?: number;
}

function hostOf(target: string): string {
  return target.includes("://") ? new URL(target).hostname : target.slice(0, target.lastIndexOf(":"));
}

/** The client for `job`. */
export function clientFor(job: Job): LoadClient {
  assertLoopback(hostOf(job.target));
  const lean = (job.client ?? "lean") === "lean";
  switch (job.door) {
    case "sse":
    case "json":
      return (lean ? createLeanHttpClient : createHttpClient)({ origin: job.target, model: job.model, stream: job.door === "sse", expectChunks: job.expectChunks, ...(job.headers ? { headers: job.headers } : {}) });
    case "grpc":
      return (lean ? createLeanGrpcClient : createGrpcClient)({ address: job.target, model: job.model, expectChunks: job.expectChunks });
    case "ws":
      return (lean ? createLeanWsClient : createWsClient)({ url: job.target, expectChunks: job.expectChunks, ...(job.fromSchedule ? { fromSchedule: true } : {}) });
  }
}

/** Default length of one window of {@link JobResult.ttftWindowP99} (ms of the schedule). */
export const WINDOW_MS = 5_000;

/**
 * The TTFT p99 of each `windowMs` window of a `seconds`-long
 * schedule (`windows[i]`: the served TTFTs of streams scheduled in window
 * i): a last window shorter than half of one is left out (too few streams
 * for its own p99), and so is a window with none served.
 */
export function windowP99s(windows: ReadonlyArray<number[] | undefined>, seconds: number, windowMs = WINDOW_MS): number[] {
  const full = Math.max(1, Math.floor((seconds * 1000) / windowMs + 0.5));
  return windows.slice(0, full).flatMap((w) => (w && w.length > 0 ? [summarize(w).p99!] : []));
}

class Recorder {
  readonly ttfts: number[] = [];
  readonly steady: number[] = [];
  /** Served TTFTs per window of the schedule (index: scheduled start / the window's length). */
  readonly windows: number[][] = [];
  readonly refusals: number[] = [];
  refused = 0;
  ok = 0;
  errors = 0;
  chunks = 0;
  started = 0;
  late = 0;
  maxLate = 0;
  readonly samples = new Set<string>();
  firstStart = 0;
  lastEnd = 0;

  /** Records one outcome; `steady`: the stream was scheduled after the first second of a rate job; `window`: its window of the schedule (rate jobs). */
  add(o: Outcome, steady = false, window?: number): void {
    this.lastEnd = performance.now();
    this.chunks += o.chunks;
    if (o.ok) {
      this.ok++;
      if (o.ttftMs !== undefined) this.ttfts.push(o.ttftMs);
      if (steady && o.ttftMs !== undefined) this.steady.push(o.ttftMs);
      if (window !== undefined && o.ttftMs !== undefined) (this.windows[window] ??= []).push(o.ttftMs);
    } else if (o.refused) {
      this.refused++;
      if (o.refusalMs !== undefined) this.refusals.push(o.refusalMs);
    } else {
      this.errors++;
      if (this.samples.size < 5 && o.error) this.samples.add(o.error);
    }
  }

  result(unfinished: number): JobResult {
    return {
      started: this.started,
      ok: this.ok,
      errors: this.errors + unfinished,
      refused: this.refused,
      refusal: summarize(this.refusals),
      unfinished,
      errorSamples: [...this.samples, ...(unfinished > 0 ? [`${unfinished} unfinished at the drain limit`] : [])],
      ttft: summarize(this.ttfts),
      chunks: this.chunks,
      elapsedS: Math.round((this.lastEnd - this.firstStart) / 10) / 100,
      lateStarts: this.late,
      maxLateMs: Math.round(this.maxLate * 10) / 10,
    };
  }
}

/**
 * Waits until every promise in `pending` has settled (each removes itself)
 * or `drainMs` has passed; returns how many are still running. One waiter
 * per promise, not one per poll: a poll loop racing thousands of pending
 * streams would add a reaction to each of them every time.
 */
function settle(pending: Set<Promise<void>>, drainMs: number): Promise<number> {
  if (pending.size === 0) return Promise.resolve(0);
  return new Promise((resolve) => {
    let left = pending.size;
    const timer = setTimeout(() => resolve(pending.size), drainMs);
    for (const p of pending) {
      void p.then(() => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve(0);
        }
      });
    }
  });
}

/**
 * Streams a `rate` job keeps open at most: under the open-file limit this
 * machine allows a process (20,000, not raisable here: prlimit gets EPERM),
 * with room for the process's own files. A stream due while this many are
 * open is skipped and counted (`skipped`), not failed with EMFILE.
 */
export const MAX_OPEN = 18_000;

/**
 * Runs a `rate` job: open loop at `rate` streams/s for `seconds`. The
 * schedule is checked on a 1 ms timer and every stream due is started at
 * once; a stream started more than 5 ms after its time counts as a late
 * start (the generator was behind), and the generator's own loop delay is
 * reported so a reader can tell its lag from the target's.
 */
export async function runRate(client: LoadClient, job: Job): Promise<JobResult> {
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const rate = job.rate ?? 100;
  const windowMs = job.windowMs ?? WINDOW_MS;
  const total = Math.max(1, Math.round(rate * (job.seconds ?? 5)));
  const rec = new Recorder();
  const pending = new Set<Promise<void>>();
  const start = performance.now() + 5;
  rec.firstStart = start;
  let i = 0;
  let skipped = 0;
  while (i < total) {
    const now = performance.now();
    while (i < total && start + (i * 1000) / rate <= now) {
      const t0 = start + (i * 1000) / rate;
      if (pending.size >= MAX_OPEN) {
        skipped++;
        i++;
        continue;
      }
      const lateBy = performance.now() - t0;
      if (lateBy > 5) rec.late++;
      if (lateBy > rec.maxLate) rec.maxLate = lateBy;
      rec.started++;
      const steady = t0 - start >= 1000;
      const window = Math.floor((t0 - start) / windowMs);
      const p: Promise<void> = client.run(t0).then((o) => {
        rec.add(o, steady, window);
        pending.delete(p);
      });
      pending.add(p);
      i++;
    }
    await sleep(1);
  }
  loop.disable();
  const loadgenDelay = { p99: Math.round(loop.percentile(99) / 1e5) / 10, max: Math.round(loop.max / 1e5) / 10 };
  const r = rec.result(await settle(pending, job.drainMs ?? 10_000));
  const cpu = process.cpuUsage(cpu0);
  const ttftWindowP99 = windowP99s(rec.windows, job.seconds ?? 5, windowMs);
  return { ...r, skipped, ttftSteady: summarize(rec.steady), ttftWindowP99, loadgenCpuMs: Math.round((cpu.user + cpu.system) / 1000), loadgenDelay };
}

/** Runs a `closed` job: `concurrency` streams back to back for `seconds`. */
export async function runClosed(client: LoadClient, job: Job): Promise<JobResult> {
  const rec = new Recorder();
  const until = performance.now() + (job.seconds ?? 5) * 1000;
  rec.firstStart = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      rec.started++;
      rec.add(await client.run(performance.now()));
    }
  };
  const workers = new Set<Promise<void>>();
  for (let i = 0; i < (job.concurrency ?? 64); i++) {
    const w: Promise<void> = worker().then(() => void workers.delete(w));
    workers.add(w);
  }
  return rec.result(await settle(workers, job.drainMs ?? 10_000));
}

/** Opens `count` streams (at most 1 000 opening at once) and holds them. */
export async function runHold(client: LoadClient, count: number): Promise<{ held: Held[]; failed: number; errorSamples: string[] }> {
  const held: Held[] = [];
  let failed = 0;
  const samples = new Set<string>();
  let next = 0;
  const opener = async (): Promise<void> => {
    while (next < count) {
      next++;
      try {
        held.push(await client.hold());
      } catch (e) {
        failed++;
        if (samples.size < 5) samples.add((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(1000, count) }, opener));
  return { held, failed, errorSamples: [...samples] };
}

/** Messages from the load generator to bench.ts. */
export type LoadgenMessage =
  | { type: "result"; result: JobResult }
  | { type: "held"; held: number; failed: number; errorSamples: string[] }
  | { type: "failed"; error: string };

async function serve(job: Job): Promise<void> {
  const send = (m: LoadgenMessage): void => void process.send?.(m);
  const client = clientFor(job);
  try {
    if (job.mode === "hold") {
      const h = await runHold(client, job.count ?? 1000);
      send({ type: "held", held: h.held.length, failed: h.failed, errorSamples: h.errorSamples });
      await new Promise<void>((r) => process.once("message", () => r()));
      for (const s of h.held) s.close();
    } else {
      send({ type: "result", result: job.mode === "rate" ? await runRate(client, job) : await runClosed(client, job) });
    }
  } finally {
    client.close();
  }
}

if (isMain(import.meta.url)) {
  process.once("message", (job: Job) => {
    serve(job)
      .catch((e: unknown) => void process.send?.({ type: "failed", error: String(e) } satisfies LoadgenMessage))
      .finally(() => setTimeout(() => process.exit(0), 50));
  });
  // Bounded: a generator that outlives any job by far is stopped.
  setTimeout(() => process.exit(2), 15 * 60_000).unref();
}
