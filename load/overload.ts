/**
 * Overload with adaptive concurrency on (the gateway's default; issue 16):
 * for each door, the capacity, the unloaded TTFT p99 (a light rate), then
 * open loop at 2× and 4× the capacity.
 *
 * Capacity is the door's closed-loop throughput (streams completed per
 * second with many streams in flight, load/scenarios.ts throughput): what
 * the process serves when it is kept busy. The latency-bounded search
 * (the highest open-loop rate with TTFT p99 under the bound, maxRate) is
 * run and shown too, but not used: on a shared host its p99 follows the
 * scheduler (other processes' time slices), not the gateway — on the
 * development machine at load 13 it stopped at 25 streams/s with the load
 * generator itself starting streams late. Each overload step records the streams served per second
 * against the capacity, the served streams' TTFT p99 against the unloaded
 * p99, the time to a refusal (HTTP 503 + Retry-After, gRPC UNAVAILABLE, a
 * realtime `server_overloaded` error event), failures other than refusals,
 * the gateway's RSS before and after, and whether it is still up.
 *
 * Latency counts from each stream's scheduled start on every door (the
 * realtime door's includes opening the session), so a gateway that is slow
 * to accept work cannot hide it.
 */
import type { Door, JobResult } from "./loadgen.js";
import type { MockShape } from "./mock-upstream.js";
import type { TurnWorker } from "./cannon.js";
import { cpuTree, holdStreams, rssTree, runJob } from "./procs.js";
import { job, log, maxRate, throughput, type MaxRateRow, type Target, type ThroughputRow } from "./scenarios.js";
import { ratio } from "./stats.js";

/** Settings of the overload runs. */
export interface OverloadPlan {
  /** Rates the capacity search steps through (streams/s). */
  readonly searchRates: readonly number[];
  readonly searchSeconds: number;
  /** TTFT p99 bound of the capacity search (ms). */
  readonly boundMs: number;
  /** Rate and length of the unloaded run. */
  readonly unloadedRate: number;
  readonly unloadedSeconds: number;
  /** Multiples of the capacity to offer. */
  readonly multiples: readonly number[];
  /** Length of each overload step (s). */
  readonly seconds: number;
  /** Streams in flight and seconds of the closed-loop capacity run. */
  readonly capacityConcurrency: number;
  readonly capacitySeconds: number;
}

/** One overload step of one door. */
export interface OverloadStep {
  readonly multiple: number;
  /** Offered streams/s. */
  readonly rate: number;
  readonly result: JobResult;
  /** Streams completed per second of the schedule. */
  readonly servedPerS: number;
  /** servedPerS / capacity. */
  readonly servedShare: number | undefined;
  /** Served streams' TTFT p99 / the unloaded p99. */
  readonly p99VsUnloaded: number | undefined;
  readonly rssBeforeMiB: number;
  readonly rssAfterMiB: number;
  /** The gateway process still running after the step. */
  readonly alive: boolean;
}

/** Everything measured for one door. */
export interface OverloadRow {
  readonly door: Door;
  /** Closed-loop streams/s: the capacity the steps multiply. */
  readonly capacity: number;
  readonly closedLoop: ThroughputRow;
  /** The latency-bounded search, for reference. */
  readonly search: MaxRateRow;
  readonly unloaded: JobResult;
  readonly unloadedRate: number;
  readonly steps: OverloadStep[];
}

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;

/**
 * Runs the search, the unloaded run and the overload steps against `t` (a
 * door of a gateway with adaptive concurrency on); `pid` is the gateway's
 * main process, `alive()` whether it still runs.
 */
export async function overloadDoor(t: Target, pid: number, alive: () => boolean, shape: MockShape, plan: OverloadPlan): Promise<OverloadRow> {
  const search = await maxRate(t, plan.searchRates, plan.searchSeconds, plan.boundMs, shape);
  const closedLoop = await throughput(t, plan.capacityConcurrency, plan.capacitySeconds, shape);
  const capacity = closedLoop.streamsPerS;
  // Unloaded: the plan's light rate, or a quarter of a lower capacity (a busy host).
  const unloadedRate = Math.max(10, Math.min(plan.unloadedRate, Math.floor(capacity / 4)));
  const unloaded = await runJob(job(t, shape, { mode: "rate", rate: unloadedRate, seconds: plan.unloadedSeconds }));
  log(`overload ${t.door}: capacity ${capacity}/s (closed loop ×${plan.capacityConcurrency}; p99-bounded search: ${search.maxRate}/s), unloaded (${unloadedRate}/s) p99 ${unloaded.ttft.p99} ms`);
  const steps: OverloadStep[] = [];
  for (const multiple of capacity > 0 ? plan.multiples : []) {
    const rate = capacity * multiple;
    const rssBefore = rssTree(pid);
    const result = await runJob(job(t, shape, { mode: "rate", rate, seconds: plan.seconds, drainMs: 15_000 }));
    const rssAfter = rssTree(pid);
    const servedPerS = Math.round(result.ok / plan.seconds);
    const step: OverloadStep = {
      multiple,
      rate,
      result,
      servedPerS,
      servedShare: ratio(servedPerS, capacity),
      p99VsUnloaded: ratio(result.ttft.p99, unloaded.ttft.p99),
      rssBeforeMiB: mib(rssBefore),
      rssAfterMiB: mib(rssAfter),
      alive: alive(),
    };
    steps.push(step);
    log(
      `overload ${t.door} ${multiple}× (${rate}/s): served ${servedPerS}/s (${step.servedShare} of capacity), p99 ${result.ttft.p99} ms (${step.p99VsUnloaded}× unloaded), refused ${result.refused ?? 0} (p50 ${result.refusal?.p50} ms, p99 ${result.refusal?.p99} ms), errors ${result.errors}, late ${result.lateStarts}, RSS ${step.rssBeforeMiB} → ${step.rssAfterMiB} MiB`,
    );
    // Let the backlog clear (and the limit recover) before the next step.
    await new Promise((r) => setTimeout(r, 2_000));
  }
  return { door: t.door, capacity, closedLoop, search, unloaded, unloadedRate, steps };
}

/** What a refusal costs the gateway against what a served stream costs, for one door. */
export interface RefusalCostRow {
  readonly door: Door;
  /** Gateway CPU µs per refused request (closed loop against a full gateway). */
  readonly refusedUs: number | undefined;
  readonly refused: number;
  /** Gateway CPU µs per served stream (the same loop once it has room). */
  readonly servedUs: number | undefined;
  readonly served: number;
  /** refusedUs / servedUs. */
  readonly ratio: number | undefined;
  /** Served share of capacity at 2× and 4× offered if the process is CPU-bound: (1 − k·r) / (1 − r). */
  readonly predicted2x: number | undefined;
  readonly predicted4x: number | undefined;
  readonly errorSamples: readonly string[];
}

/**
 * Past capacity the gateway spends CPU on every request it refuses, taken
 * from the streams it serves: with r = CPU per refusal / CPU per served
 * stream and the process CPU-bound, offering k× its capacity leaves
 * (1 − k·r) / (1 − r) of it for served streams — ≥ 90% at 4× needs r ≤ 3.2%,
 * at 2× r ≤ 9%. Measured by CPU time, not latency (sound on a shared host):
 * `fill()` fills the gateway's hard stream cap (which must be `concurrency`),
 * `targets` are then refused in a closed loop, then the slots are released
 * and the same loop is served.
 */
export async function refusalCost(
  worker: TurnWorker,
  targets: readonly Target[],
  pid: number,
  shape: MockShape,
  fill: () => Promise<{ release(): Promise<void> }>,
  concurrency: number,
  seconds: number,
): Promise<RefusalCostRow[]> {
  const refused = new Map<Door, { us: number | undefined; n: number; samples: readonly string[] }>();
  const held = await fill();
  try {
    for (const t of targets) {
      const c0 = cpuTree(pid);
      const r = await worker.run({ kind: "closed", job: job(t, shape, { mode: "closed", concurrency, seconds }) });
      const cpu = cpuTree(pid) - c0;
      refused.set(t.door, { us: r.refused > 0 ? (cpu * 1000) / r.refused : undefined, n: r.refused, samples: r.errorSamples.filter((e) => !/503|overloaded|limit of concurrent/i.test(e)) });
    }
  } finally {
    await held.release();
  }
  const rows: RefusalCostRow[] = [];
  for (const t of targets) {
    const c0 = cpuTree(pid);
    const r = await worker.run({ kind: "closed", job: job(t, shape, { mode: "closed", concurrency, seconds }) });
    const cpu = cpuTree(pid) - c0;
    const ref = refused.get(t.door)!;
    // Should a stream of this loop still be refused (the cap is the loop's size), its cost is taken out.
    const servedUs = r.ok > 0 ? Math.max(0, cpu * 1000 - r.refused * (ref.us ?? 0)) / r.ok : undefined;
    const q = ref.us !== undefined && servedUs !== undefined ? ref.us / servedUs : undefined;
    const predict = (k: number): number | undefined => (q === undefined ? undefined : Math.max(0, Math.round(((1 - k * q) / (1 - q)) * 100) / 100));
    const row = { door: t.door, refusedUs: ref.us, refused: ref.n, servedUs, served: r.ok, ratio: q, predicted2x: predict(2), predicted4x: predict(4), errorSamples: [...ref.samples, ...r.errorSamples].slice(0, 4) };
    rows.push(row);
    log(`refusal cost ${t.door}: ${ref.us?.toFixed(1)} µs per refusal (${ref.n}), ${servedUs?.toFixed(1)} µs per served stream (${r.ok}), ratio ${q?.toFixed(3)}, predicted share at 2× ${row.predicted2x}, 4× ${row.predicted4x}`);
  }
  return rows;
}

/** Fills a gateway's stream cap with `count` slow streams on `t`; resolves once they are all open. */
export function fillWith(t: Target, shape: MockShape, count: number): () => Promise<{ release(): Promise<void> }> {
  return async () => {
    const h = await holdStreams(job(t, shape, { mode: "hold", count }));
    if (h.held < count) throw new Error(`could fill only ${h.held} of ${count} stream slots: ${h.errorSamples.join("; ")}`);
    return h;
  };
}

/** The refusal-cost table as markdown. */
export function refusalCostMarkdown(rows: readonly RefusalCostRow[]): string {
  const head = ["door", "CPU µs per refusal", "refused", "CPU µs per served stream", "served", "refusal / served", "predicted served share at 2×", "at 4×"];
  const body = rows.map((r) =>
    [r.door, f(r.refusedUs), String(r.refused), f(r.servedUs), String(r.served), r.ratio === undefined ? "–" : `${(r.ratio * 100).toFixed(1)}%`, f(r.predicted2x, 2), f(r.predicted4x, 2)].join(" | "),
  );
  return [
    "### What a refusal costs (CPU, not latency)",
    "",
    "The gateway's stream cap filled with slow streams, then a closed loop of new streams on each door (all refused), then the same loop with room (all served). With the process CPU-bound, k× its capacity offered leaves (1 − k·r)/(1 − r) of it for served streams, r = refusal/served: ≥ 90% at 4× needs r ≤ 3.2%, at 2× r ≤ 9%. Realtime: each refused request here is a new session (handshake included) whose `response.create` is refused.",
    "",
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...body.map((b) => `| ${b} |`),
    "",
    ...rows.filter((r) => r.errorSamples.length > 0).map((r) => `- ${r.door}: ${r.errorSamples.join("; ")}`),
    "",
  ].join("\n");
}

const f = (v: number | undefined, d = 1): string => (v === undefined ? "–" : v.toFixed(d));

/** The overload tables as markdown, with the issue's aims read off. */
export function overloadMarkdown(rows: readonly OverloadRow[], boundMs: number): string {
  const out: string[] = ["## Overload with adaptive concurrency (on: the gateway's default)", ""];
  const conc = rows[0]?.closedLoop.concurrency;
  out.push(
    `Capacity: the door's closed-loop throughput (${conc} streams in flight; refused streams in it: ${rows.map((r) => `${r.door} ${r.closedLoop.result.refused ?? 0}`).join(", ")}); the p99-bounded search (p99 ≤ ${boundMs} ms, no error or refusal) is shown for reference. Then open loop at each multiple of the capacity. TTFT from each stream's scheduled start (realtime: session setup included); time to refusal from the refused request's actual send (realtime: its \`response.create\`). Served/s = streams completed / seconds of the schedule.`,
    "",
  );
  const head = ["door", "capacity /s", "p99 ≤ bound /s", "unloaded p99 ms (at /s)", "offered", "served /s", "served / capacity", "served TTFT p50 ms", "served TTFT p99 ms", "p99 / unloaded", "refused", "refusal p50 ms", "refusal p99 ms", "errors", "late starts", "RSS before → after MiB", "up after"];
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    if (r.steps.length === 0) lines.push(`| ${r.door} | ${r.capacity} | ${r.search.maxRate} | ${f(r.unloaded.ttft.p99)} (${r.unloadedRate}) | – | – | – | – | – | – | – | – | – | – | – | – | – |`);
    for (const s of r.steps) {
      lines.push(
        `| ${[
          r.door,
          String(r.capacity),
          String(r.search.maxRate),
          `${f(r.unloaded.ttft.p99)} (${r.unloadedRate})`,
          `${s.multiple}× = ${s.rate}/s`,
          String(s.servedPerS),
          f(s.servedShare, 2),
          f(s.result.ttft.p50),
          f(s.result.ttft.p99),
          s.p99VsUnloaded === undefined ? "–" : `${s.p99VsUnloaded.toFixed(1)}×`,
          `${s.result.refused ?? 0} / ${s.result.started}`,
          f(s.result.refusal?.p50, 2),
          f(s.result.refusal?.p99, 2),
          String(s.result.errors),
          String(s.result.lateStarts),
          `${f(s.rssBeforeMiB)} → ${f(s.rssAfterMiB)}`,
          s.alive ? "yes" : "**no**",
        ].join(" | ")} |`,
      );
    }
  }
  out.push(...lines, "");
  out.push("p99-bounded search steps (rate: p99 ms / errors+refusals):", "");
  for (const r of rows) out.push(`- ${r.door}: ${r.search.steps.map((s) => `${s.rate}: ${f(s.p99)}/${s.errors}`).join(", ")}`);
  out.push("");
  const aims: string[] = [];
  for (const r of rows) {
    for (const s of r.steps) {
      const served = s.servedShare !== undefined && s.servedShare >= 0.9;
      const p99 = s.p99VsUnloaded !== undefined && s.p99VsUnloaded <= 3;
      const refusal = (s.result.refused ?? 0) === 0 || (s.result.refusal?.p99 ?? Infinity) < 5;
      const late = s.result.started > 0 ? s.result.lateStarts / s.result.started : 0;
      const behind = late > 0.05 ? ` — **load generator behind: ${Math.round(late * 100)}% of streams started > 5 ms late**, so this step measures the host as much as the gateway` : "";
      aims.push(
        `- ${r.door} ${s.multiple}×: served ≥ 90% of capacity **${served ? "met" : "missed"}**; p99 ≤ 3× unloaded **${p99 ? "met" : "missed"}**; refusals < 5 ms (p99) **${refusal ? "met" : "missed"}**; errors other than refusals: ${s.result.errors}${s.result.errorSamples.length ? ` (${s.result.errorSamples.slice(0, 3).join("; ")})` : ""}; gateway up: ${s.alive ? "yes" : "NO"}${behind}`,
      );
    }
  }
  if (aims.length > 0) out.push("Aims (issue 16) in this run:", "", ...aims, "");
  return out.join("\n");
}
