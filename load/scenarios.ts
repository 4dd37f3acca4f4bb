/**
 * The benchmark's measurements, each a function of the running processes:
 * fixed-rate TTFT, the highest rate whose p99 stays under a bound, chunks/s
 * relayed, and memory per open stream. bench.ts decides which run and in
 * what order; report.ts prints them.
 */
import type { Door, Job, JobResult } from "./loadgen.js";
import type { MockShape } from "./mock-upstream.js";
import { cpuTree, holdStreams, rssTree, runJob } from "./procs.js";
import { minus, round } from "./stats.js";
import { sleep } from "./util.js";

/** Something the load generator can aim at: a door of a gateway, or the mock itself. */
export interface Target {
  /** Row label: `direct`, `spillway`, `portkey`, … */
  readonly name: string;
  readonly door: Door;
  /** URL or address for the door (see {@link Job.target}). */
  readonly url: string;
  /** The model id to ask for `shape` (gateways prefix their provider). */
  model(shape: MockShape): string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The process serving it (with its workers), for CPU time per stream. */
  readonly pid?: number | undefined;
  /** Realtime door: latency from the scheduled start, session setup included (the overload runs). */
  readonly fromSchedule?: boolean | undefined;
}

/** The WebSocket door's URL for a realtime model. */
export function wsUrl(port: number, model: string): string {
  return `ws://127.0.0.1:${port}/v1/realtime?model=${encodeURIComponent(model)}`;
}

/** The load generator job for `t` and `shape`. */
export function job(t: Target, shape: MockShape, extra: Omit<Job, "door" | "target" | "model" | "expectChunks">): Job {
  return { door: t.door, target: t.url, model: t.model(shape), expectChunks: t.door === "json" ? 1 : shape.chunks, ...(t.headers ? { headers: t.headers } : {}), ...(t.fromSchedule ? { fromSchedule: true } : {}), ...extra };
}

/** One fixed-rate run of one target. */
export interface RateRow {
  readonly target: string;
  readonly door: Door;
  readonly rate: number;
  readonly result: JobResult;
  /** p50/p99 TTFT minus the direct run's at the same rate (ms). */
  readonly addedP50: number | undefined;
  readonly addedP99: number | undefined;
  /** CPU time the target's processes used per stream during the run (µs), when its pid is known. */
  readonly cpuUsPerStream?: number | undefined;
}

/** Fixed-rate TTFT of every target at every rate; `direct` (the first target) is the floor. */
export async function fixedRates(targets: readonly Target[], rates: readonly number[], seconds: number, shape: MockShape): Promise<RateRow[]> {
  const rows: RateRow[] = [];
  for (const rate of rates) {
    let floor: JobResult | undefined;
    for (const t of targets) {
      const cpuBefore = t.pid === undefined ? 0 : cpuTree(t.pid);
      const result = await runJob(job(t, shape, { mode: "rate", rate, seconds }));
      const cpuUsPerStream = t.pid === undefined || result.ok === 0 ? undefined : round(((cpuTree(t.pid) - cpuBefore) * 1000) / result.ok);
      if (t.name === "direct") floor = result;
      rows.push({
        target: t.name,
        door: t.door,
        rate,
        result,
        addedP50: t.name === "direct" ? undefined : minus(result.ttft.p50, floor?.ttft.p50),
        addedP99: t.name === "direct" ? undefined : minus(result.ttft.p99, floor?.ttft.p99),
        cpuUsPerStream,
      });
      log(`rate ${rate}/s ${t.name}/${t.door}: p50 ${result.ttft.p50} ms p99 ${result.ttft.p99} ms ok ${result.ok}/${result.started} late ${result.lateStarts} cpu/stream ${cpuUsPerStream ?? "?"} µs, load generator ${result.loadgenCpuMs ?? "?"} ms CPU`);
    }
  }
  return rows;
}

/** The highest sustained rate of one target. */
export interface MaxRateRow {
  readonly target: string;
  readonly door: Door;
  /** Highest rate tried that kept p99 under the bound with no errors (streams/s). */
  readonly maxRate: number;
  readonly boundMs: number;
  readonly steps: ReadonlyArray<{ rate: number; p99: number | undefined; errors: number; achieved: number }>;
}

/**
 * Steps the rate up until p99 TTFT passes `boundMs` or a stream fails. A
 * failed step is run once more before the search stops: other work on the
 * machine only ever makes a step slower, so one retry filters a noisy
 * second out without hiding a real limit.
 */
export async function maxRate(t: Target, rates: readonly number[], seconds: number, boundMs: number, shape: MockShape): Promise<MaxRateRow> {
  const steps: Array<{ rate: number; p99: number | undefined; errors: number; achieved: number }> = [];
  let best = 0;
  for (const rate of rates) {
    let sustained = false;
    for (let attempt = 0; attempt < 2 && !sustained; attempt++) {
      const r = await runJob(job(t, shape, { mode: "rate", rate, seconds, drainMs: 5_000 }));
      const achieved = round(r.ok / Math.max(r.elapsedS, seconds));
      steps.push({ rate, p99: r.ttft.p99, errors: r.errors + (r.refused ?? 0), achieved });
      // Latency counts from the scheduled start, so a generator that falls behind shows in p99 too.
      // A refusal (adaptive concurrency) means the rate is past what the gateway serves.
      sustained = r.errors === 0 && (r.refused ?? 0) === 0 && r.ttft.p99 !== undefined && r.ttft.p99 <= boundMs;
      log(`max-rate ${t.name}/${t.door} ${rate}/s: p99 ${r.ttft.p99} ms errors ${r.errors} refused ${r.refused ?? 0} late ${r.lateStarts} → ${sustained ? "ok" : "over"}`);
    }
    if (!sustained) break;
    best = rate;
  }
  return { target: t.name, door: t.door, maxRate: best, boundMs, steps };
}

/** Chunks relayed per second by one target. */
export interface ThroughputRow {
  readonly target: string;
  readonly door: Door;
  readonly concurrency: number;
  readonly chunksPerS: number;
  readonly streamsPerS: number;
  readonly result: JobResult;
}

/** Closed loop: `concurrency` streams back to back for `seconds`; counts content chunks received. */
export async function throughput(t: Target, concurrency: number, seconds: number, shape: MockShape): Promise<ThroughputRow> {
  const r = await runJob(job(t, shape, { mode: "closed", concurrency, seconds }));
  const elapsed = Math.max(r.elapsedS, 0.001);
  const row = { target: t.name, door: t.door, concurrency, chunksPerS: Math.round(r.chunks / elapsed), streamsPerS: Math.round(r.ok / elapsed), result: r };
  log(`throughput ${t.name}/${t.door} ×${concurrency}: ${row.chunksPerS} chunks/s, ${row.streamsPerS} req/s, errors ${r.errors}`);
  return row;
}

/** Memory per open stream of one door. */
export interface MemoryRow {
  readonly target: string;
  readonly door: Door;
  readonly streams: number;
  readonly held: number;
  readonly failed: number;
  readonly workers: number;
  readonly rssBaseMiB: number;
  readonly rssHeldMiB: number;
  /** (RSS with the streams open − RSS before) / streams open, KiB. */
  readonly kibPerStream: number | undefined;
  readonly errorSamples: readonly string[];
}

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;

/** How long {@link memory} lets RSS settle (ms): before the baseline, once the streams are held, between the 3 samples, after release. */
export interface MemorySettle {
  readonly beforeMs: number;
  readonly heldMs: number;
  readonly sampleMs: number;
  readonly afterMs: number;
}

/** The settle times of a measured run. */
export const MEMORY_SETTLE: MemorySettle = { beforeMs: 1_000, heldMs: 1_500, sampleMs: 300, afterMs: 1_000 };

/**
 * Opens `streams` slow streams (one chunk every few seconds), and compares
 * the gateway's resident memory (every process of it) with them open to
 * before. `pid` is the gateway's main process.
 */
export async function memory(t: Target, pid: number, streams: number, workers: number, shape: MockShape, settle: MemorySettle = MEMORY_SETTLE): Promise<MemoryRow> {
  // Warm up (JIT, pools) so the baseline is a serving process, not a fresh one.
  await runJob(job(t, { ...shape, delayMs: 0, chunks: 4 }, { mode: "closed", concurrency: 50, seconds: 1 }));
  await sleep(settle.beforeMs);
  const base = rssTree(pid);
  const h = await holdStreams(job(t, shape, { mode: "hold", count: streams }));
  await sleep(settle.heldMs);
  let held = 0;
  for (let i = 0; i < 3; i++) {
    held = Math.max(held, rssTree(pid));
    await sleep(settle.sampleMs);
  }
  await h.release();
  await sleep(settle.afterMs);
  const row: MemoryRow = {
    target: t.name,
    door: t.door,
    streams,
    held: h.held,
    failed: h.failed,
    workers,
    rssBaseMiB: mib(base),
    rssHeldMiB: mib(held),
    kibPerStream: h.held > 0 ? Math.round(((held - base) / 1024 / h.held) * 10) / 10 : undefined,
    errorSamples: h.errorSamples,
  };
  log(`memory ${t.name}/${t.door} ${streams} streams (held ${h.held}, failed ${h.failed}): ${row.rssBaseMiB} → ${row.rssHeldMiB} MiB, ${row.kibPerStream} KiB/stream`);
  return row;
}

/** Progress on stderr (the table goes to stdout). */
export function log(s: string): void {
  process.stderr.write(`[bench] ${s}\n`);
}
