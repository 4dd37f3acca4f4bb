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
import { readFileSync } from "node:fs";
import type { Door, JobResult } from "./loadgen.js";
import type { MockShape } from "./mock-upstream.js";
import type { TurnWorker } from "./cannon.js";
import { cpuTree, holdStreams, rssTree, runJob } from "./procs.js";
import { job, log, throughput, type Target, type ThroughputRow } from "./scenarios.js";
import { betterAttempt, latencyBoundCapacity, windowedP99, limitGaugeValues, stepWithinBound, limitTrace, SEARCH_RATES, stepCapacity, stepRatios, type CapacityMode, type LimitTrace, type SearchStep } from "./overload-capacity.js";

/** Settings of the overload runs. */
export interface OverloadPlan {
  /** Rate and length of the unloaded run. */
  readonly unloadedRate: number;
  readonly unloadedSeconds: number;
  /** Multiples of the capacity to offer. */
  readonly multiples: readonly number[];
  /** Length of each overload step (s). */
  readonly seconds: number;
  /** How long after a step's schedule its streams may still finish (ms); later ones are "unfinished". */
  readonly drainMs: number;
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
  /** Seconds after the load generator ended until the gateway had no stream open (undefined: still some after the wait). */
  readonly idleAfterS?: number | undefined;
  /** The gateway process still running after the step. */
  readonly alive: boolean;
  /**
   * Connections dropped because a listen queue was full during the step
   * (`TcpExt ListenOverflows`, /proc/net/netstat: every socket of this
   * network namespace, so other processes' too). A dropped SYN is retried by
   * the client after 1 s, then 3 s: it shows as a refusal or first chunk
   * that took seconds.
   */
  readonly listenOverflows?: number | undefined;
  /** The quiet probe beside the step (its own process, `--probe` streams/s to the same door). */
  readonly probe?: JobResult | undefined;
  /** The adaptive limit during the step (`spillway_concurrency_limit` from /metrics). */
  readonly limit?: LimitTrace | undefined;
}

/** Everything measured for one door of one gateway. */
export interface OverloadRow {
  /** Which gateway (this tree, or `spillway@DIR` of `--compare`). Absent in older results. */
  readonly tree?: string;
  readonly door: Door;
  /** The capacity the steps multiply: the closed-loop streams/s with adaptive concurrency off (of this tree, or the trees' mean when they are compared). */
  readonly capacity: number;
  /** Closed loop with the limit off (absent with `--capacity latency`). */
  readonly closedLoop?: ThroughputRow | undefined;
  /** Latency-bound capacity (limit off, open loop): the highest rate with TTFT p99 ≤ 3× unloaded and every stream served. */
  readonly latencyCapacity?: number | undefined;
  /** The steps of that search. */
  readonly search?: readonly SearchStep[] | undefined;
  /** The one unloaded run of the door (limit off, low rate): the divisor of every p99 ratio. */
  readonly unloaded: JobResult;
  readonly unloadedRate: number;
  /** Streams/s of the probe beside each step (0: none). */
  readonly probeRate?: number | undefined;
  readonly steps: OverloadStep[];
}

/** A door's baseline, measured on a gateway with the limit off: the one unloaded p99 and the capacities. */
export interface DoorBaseline {
  readonly unloaded: JobResult;
  readonly unloadedRate: number;
  readonly closedLoop?: ThroughputRow | undefined;
  readonly latencyCapacity?: number | undefined;
  readonly search?: readonly SearchStep[] | undefined;
}

/** Window length of a capacity-search step (ms): a 5 s step has five, so {@link windowedP99} is their median. */
export const SEARCH_WINDOW_MS = 1_000;

/** A search step's figures from a job's result (its p99: {@link windowedP99}). */
export function searchStep(rate: number, r: JobResult): SearchStep {
  return { rate, started: r.started, ok: r.ok, errors: r.errors, refused: r.refused, skipped: r.skipped, p99: windowedP99(r) };
}

/** The unloaded run of door `t` (the plan's low rate and length; limit off), then `idle()`. */
export async function unloadedRun(t: Target, shape: MockShape, plan: OverloadPlan, idle: IdleWait): Promise<JobResult> {
  const r = await runJob(job(t, shape, { mode: "rate", rate: plan.unloadedRate, seconds: plan.unloadedSeconds }));
  await idle();
  return r;
}

/**
 * The baseline of door `t` on a gateway with the limit **off**: the unloaded
 * run (plan's low rate; `measured` when it was run beforehand), the latency-bound capacity search (open loop,
 * {@link SEARCH_RATES} of `searchSeconds` each, up to the first step past
 * 3× the unloaded p99 or with a stream not served — a failing step is
 * offered once more first, {@link betterAttempt}; `idle()` between steps)
 * and/or the closed-loop capacity, as `mode` asks.
 */
export async function doorBaseline(t: Target, shape: MockShape, plan: OverloadPlan, mode: CapacityMode, searchSeconds: number, idle: IdleWait, measured?: JobResult): Promise<DoorBaseline> {
  const unloaded = measured ?? (await unloadedRun(t, shape, plan, idle));
  const p99 = windowedP99(unloaded);
  let latencyCapacity: number | undefined;
  const search: SearchStep[] = [];
  if (mode !== "closed" && p99 !== undefined) {
    const attempt = async (rate: number): Promise<SearchStep> => {
      // 1 s windows: the step's p99 is judged as the divisor is, the median of its windows' p99s.
      const r = await runJob(job(t, shape, { mode: "rate", rate, seconds: searchSeconds, drainMs: plan.drainMs, windowMs: SEARCH_WINDOW_MS }));
      await idle();
      log(`capacity search ${t.door} ${rate}/s: served ${r.ok}/${r.started}, errors ${r.errors}, p99 ${windowedP99(r)} ms (windows ${r.ttftWindowP99?.join(", ") ?? "–"}, whole ${r.ttft.p99}) (bound ${Math.round(3 * p99 * 10) / 10} ms)`);
      return searchStep(rate, r);
    };
    for (const rate of SEARCH_RATES) {
      let s = await attempt(rate);
      // A failing step is offered once more before the search stops: one p99 on a shared host is noisy.
      if (!stepWithinBound(s, p99)) s = betterAttempt(s, await attempt(rate), p99);
      search.push(s);
      if (!stepWithinBound(s, p99)) break;
    }
    latencyCapacity = latencyBoundCapacity(search, p99);
  }
  const closedLoop = mode === "latency" ? undefined : await throughput(t, plan.capacityConcurrency, plan.capacitySeconds, shape);
  if (closedLoop) await idle();
  log(`baseline ${t.door} (limit off): unloaded (${plan.unloadedRate}/s) divisor ${p99} ms (window p99s ${unloaded.ttftWindowP99?.join(", ") ?? "–"}, whole run ${unloaded.ttft.p99}); capacity latency-bound ${latencyCapacity ?? "–"}/s, closed loop ×${plan.capacityConcurrency} ${closedLoop?.streamsPerS ?? "–"}/s`);
  return { unloaded, unloadedRate: plan.unloadedRate, closedLoop, latencyCapacity, search };
}

/** The capacity a baseline gives the steps ({@link stepCapacity}). */
export function baselineCapacity(b: DoorBaseline, mode: CapacityMode): number {
  return stepCapacity(mode, b.latencyCapacity, b.closedLoop?.streamsPerS);
}

/** Reads the adaptive limit gauge from the gateway's /metrics every `everyMs` until stopped. */
export function traceLimit(httpPort: number, everyMs = 250): { stop(): Promise<LimitTrace> } {
  const values: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      try {
        values.push(...limitGaugeValues(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()));
      } catch {
        // A busy gateway may not answer in time: no sample.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return limitTrace(values);
    },
  };
}

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;

/** `TcpExt ListenOverflows` of this network namespace (undefined where /proc/net/netstat is not there). */
export function listenOverflows(): number | undefined {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) => l.startsWith("TcpExt:"));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const i = names.indexOf("ListenOverflows");
    return i > 0 ? Number(values[i]) : undefined;
  } catch {
    return undefined;
  }
}

/** How a step waits for the gateway to be idle: resolves with the seconds it took, or undefined if it never was. */
export type IdleWait = () => Promise<number | undefined>;

/**
 * Polls the gateway's `/metrics` (`spillway_active_streams`, every door)
 * until nothing is open, for at most `maxMs`: a step's streams must be gone
 * before the next step is offered, or one step's backlog is the next one's
 * latency.
 */
export function idleWait(httpPort: number, maxMs = 15_000): IdleWait {
  return async () => {
    const t0 = performance.now();
    while (performance.now() - t0 < maxMs) {
      try {
        const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
        let open = 0;
        for (const m of text.matchAll(/^spillway_active_streams\{[^}]*\} (\d+)/gm)) open += Number(m[1]);
        // The /metrics request itself is one open HTTP request.
        if (open <= 1) return Math.round((performance.now() - t0) / 100) / 10;
      } catch {
        // Not answering yet: wait.
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return undefined;
  };
}

/**
 * Runs the overload steps against `t` (a door of a gateway with adaptive
 * concurrency on, whose /metrics is on `httpPort`), multiplying `capacity`
 * and dividing every p99 by the baseline's one unloaded p99 (both measured
 * beforehand with the limit off); `pid` is the gateway's main process,
 * `alive()` whether it still runs, `idle()` waits until it has no stream
 * open (after every step, before the next). Beside each step a quiet probe
 * (its own load generator process, `probeRate` streams/s; 0: none) sends to
 * the same door, and the limit gauge is traced.
 */
export async function overloadDoor(t: Target, tree: string, pid: number, alive: () => boolean, idle: IdleWait, shape: MockShape, plan: OverloadPlan, base: DoorBaseline, capacity: number, probeRate: number, httpPort: number): Promise<OverloadRow> {
  const unloaded = base.unloaded;
  log(`overload ${tree}/${t.door}: capacity ${capacity}/s (latency-bound ${base.latencyCapacity ?? "–"}/s, closed loop ${base.closedLoop?.streamsPerS ?? "–"}/s), unloaded (${base.unloadedRate}/s, limit off) divisor ${windowedP99(unloaded)} ms (whole run p99 ${unloaded.ttft.p99})`);
  const steps: OverloadStep[] = [];
  for (const multiple of capacity > 0 ? plan.multiples : []) {
    const rate = capacity * multiple;
    const rssBefore = rssTree(pid);
    const drops0 = listenOverflows();
    const trace = traceLimit(httpPort);
    const [result, probe] = await Promise.all([
      runJob(job(t, shape, { mode: "rate", rate, seconds: plan.seconds, drainMs: plan.drainMs })),
      probeRate > 0 ? runJob(job(t, shape, { mode: "rate", rate: probeRate, seconds: plan.seconds, drainMs: plan.drainMs })) : Promise.resolve(undefined),
    ]);
    const limit = await trace.stop();
    const drops1 = listenOverflows();
    const rssAfter = rssTree(pid);
    const idleAfterS = await idle();
    const r = stepRatios(result.ok, plan.seconds, windowedP99(result), capacity, windowedP99(unloaded));
    const step: OverloadStep = {
      multiple,
      rate,
      result,
      ...r,
      rssBeforeMiB: mib(rssBefore),
      rssAfterMiB: mib(rssAfter),
      idleAfterS,
      alive: alive(),
      listenOverflows: drops0 === undefined || drops1 === undefined ? undefined : drops1 - drops0,
      probe,
      limit,
    };
    steps.push(step);
    log(
      `overload ${tree}/${t.door} ${multiple}× (${rate}/s): served ${r.servedPerS}/s (${step.servedShare} of capacity), p50/p99 ${result.ttft.p50}/${result.ttft.p99} ms (${step.p99VsUnloaded}× unloaded; after 1 s ${result.ttftSteady?.p99}), refused ${result.refused ?? 0} (p50 ${result.refusal?.p50} ms, p99 ${result.refusal?.p99} ms), probe refused ${probe?.refused ?? "–"} (p50/p99 ${probe?.refusal?.p50}/${probe?.refusal?.p99} ms) served TTFT p50/p99 ${probe?.ttft.p50}/${probe?.ttft.p99} ms, limit min/median/max ${limit.min}/${limit.median}/${limit.max} (${limit.samples} samples), errors ${result.errors} (unfinished ${result.unfinished ?? "?"}), late ${result.lateStarts} (max ${result.maxLateMs} ms), load generator loop p99 ${result.loadgenDelay?.p99} ms, SYN drops ${step.listenOverflows}, RSS ${step.rssBeforeMiB} → ${step.rssAfterMiB} MiB, idle after ${idleAfterS ?? "> 15"} s`,
    );
    // The limit recovers before the next step.
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return { tree, door: t.door, capacity, closedLoop: base.closedLoop, latencyCapacity: base.latencyCapacity, search: base.search, unloaded, unloadedRate: base.unloadedRate, probeRate, steps };
}

/** What a refusal costs the gateway against what a served stream costs, for one door. */
export interface RefusalCostRow {
  /** Which gateway (absent in older results: this tree). */
  readonly tree?: string;
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
  tree = "spillway",
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
    const row = { tree, door: t.door, refusedUs: ref.us, refused: ref.n, servedUs, served: r.ok, ratio: q, predicted2x: predict(2), predicted4x: predict(4), errorSamples: [...ref.samples, ...r.errorSamples].slice(0, 4) };
    rows.push(row);
    log(`refusal cost ${tree}/${t.door}: ${ref.us?.toFixed(1)} µs per refusal (${ref.n}), ${servedUs?.toFixed(1)} µs per served stream (${r.ok}), ratio ${q?.toFixed(3)}, predicted share at 2× ${row.predicted2x}, 4× ${row.predicted4x}`);
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
  const head = ["gateway", "door", "CPU µs per refusal", "refused", "CPU µs per served stream", "served", "refusal / served", "predicted served share at 2×", "at 4×"];
  const body = rows.map((r) =>
    [r.tree ?? "spillway", r.door, f(r.refusedUs), String(r.refused), f(r.servedUs), String(r.served), r.ratio === undefined ? "–" : `${(r.ratio * 100).toFixed(1)}%`, f(r.predicted2x, 2), f(r.predicted4x, 2)].join(" | "),
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
    ...rows.filter((r) => r.errorSamples.length > 0).map((r) => `- ${r.tree ?? "spillway"} ${r.door}: ${r.errorSamples.join("; ")}`),
    "",
  ].join("\n");
}

const f = (v: number | undefined, d = 1): string => (v === undefined ? "–" : v.toFixed(d));

const pct = (a: number, b: number): string => (b > 0 ? `${Math.round((a / b) * 100)}%` : "–");

/** Whether a step met each of the issue's aims. */
export function stepAims(s: OverloadStep): { served: boolean; p99: boolean; refusal: boolean; clean: boolean } {
  return {
    served: s.servedShare !== undefined && s.servedShare >= 0.9,
    p99: s.p99VsUnloaded !== undefined && s.p99VsUnloaded <= 3,
    refusal: (s.result.refused ?? 0) === 0 || (s.result.refusal?.p99 ?? Infinity) < 5,
    clean: s.result.errors === 0 && s.alive,
  };
}

/** The overload tables as markdown, with the issue's aims read off. */
export function overloadMarkdown(rows: readonly OverloadRow[], settings?: Record<string, number | string>): string {
  const out: string[] = ["## Overload with adaptive concurrency (on: the gateway's default)", ""];
  const conc = rows[0]?.closedLoop?.concurrency;
  out.push(
    `Baseline per door on a gateway with adaptive concurrency **off**: one unloaded run at a low rate (the divisor of every "p99 / unloaded" is the median of its 5 s windows' TTFT p99s, or its whole p99 with fewer than 3 windows; a step's p99 in that ratio, and a search step's against its bound, is taken the same way — 5 s windows of a step, 1 s windows of a search step), the latency-bound capacity (open loop, rates stepped up: the highest whose TTFT p99 ≤ 3× unloaded with every stream served) and the closed-loop capacity (${conc ?? "–"} streams in flight); the steps multiply the latency-bound one when it was measured. Then, on a gateway with it **on**${settings && Object.keys(settings).length > 0 ? ` (${Object.entries(settings).map(([k, v]) => `${k} ${v}`).join(", ")})` : " (its defaults, or the row's target)"}: open loop at each multiple of the capacity, a quiet probe (its own process, the row's rate) beside it on the same door, the limit gauge read from /metrics every 250 ms. TTFT counts from each stream's **scheduled** start (realtime: session setup included); a refusal is timed from the refused request's actual send. Served/s = streams completed / seconds of the schedule. "limit" = spillway_concurrency_limit min / median / max over the step (∞ = unlimited). "late" = streams the generator started > 5 ms late (and the worst); "lg loop p99" = the generator's own loop delay. "unfinished" = streams still open at the drain limit (counted in errors).`,
    "",
  );
  const head = ["gateway", "door", "capacity /s latency-bound / closed", "unloaded divisor / whole-run p99 ms (at /s)", "offered", "served /s (of capacity)", "served TTFT p50 / p99 ms", "p99 / unloaded (windowed p99 ms)", "refused", "refusal p50 / p99 ms", "probe /s: refusal p50 / p99 ms", "probe served TTFT p50 / p99 ms (served/started)", "limit min / med / max", "errors (unfinished)", "late starts (max ms)", "lg loop p99 ms", "RSS before → after MiB", "up"];
  const lim = (v: number | undefined): string => (v === undefined ? "–" : v < 0 ? "∞" : String(v));
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    const cap = `${r.latencyCapacity ?? "–"} / ${r.closedLoop?.streamsPerS ?? "–"}`;
    const div = `${f(windowedP99(r.unloaded))} / ${f(r.unloaded.ttft.p99)} (${r.unloadedRate})`;
    if (r.steps.length === 0) lines.push(`| ${r.tree ?? "spillway"} | ${r.door} | ${cap} | ${div} | ${head.slice(4).map(() => "–").join(" | ")} |`);
    for (const s of r.steps) {
      const x = s.result;
      const p = s.probe;
      lines.push(
        `| ${[
          r.tree ?? "spillway",
          r.door,
          cap,
          div,
          `${s.multiple}× = ${s.rate}/s`,
          `${s.servedPerS} (${f(s.servedShare, 2)})`,
          `${f(x.ttft.p50)} / ${f(x.ttft.p99)}`,
          s.p99VsUnloaded === undefined ? "–" : `${s.p99VsUnloaded.toFixed(1)}× (${f(windowedP99(x))})`,
          `${x.refused ?? 0} / ${x.started}${x.skipped ? ` (+${x.skipped} skipped)` : ""}`,
          `${f(x.refusal?.p50, 1)} / ${f(x.refusal?.p99, 1)}`,
          p ? `${r.probeRate}: ${f(p.refusal?.p50, 1)} / ${f(p.refusal?.p99, 1)} (${p.refused ?? 0} refused)` : "–",
          p ? `${f(p.ttft.p50)} / ${f(p.ttft.p99)} (${p.ok}/${p.started})` : "–",
          s.limit ? `${lim(s.limit.min)} / ${lim(s.limit.median)} / ${lim(s.limit.max)}` : "–",
          `${x.errors} (${x.unfinished ?? "?"})`,
          `${pct(x.lateStarts, x.started)} (${f(x.maxLateMs)})`,
          f(x.loadgenDelay?.p99),
          `${f(s.rssBeforeMiB)} → ${f(s.rssAfterMiB)}`,
          s.alive ? "yes" : "**no**",
        ].join(" | ")} |`,
      );
    }
  }
  out.push(...lines, "");
  const aims: string[] = [];
  const yes = (b: boolean): string => (b ? "met" : "**missed**");
  for (const r of rows) {
    for (const s of r.steps) {
      const a = stepAims(s);
      const late = s.result.started > 0 ? s.result.lateStarts / s.result.started : 0;
      const behind = late > 0.05 ? ` — load generator behind on ${Math.round(late * 100)}% of starts: latency here measures it too` : "";
      aims.push(
        `- ${r.tree ?? "spillway"} ${r.door} ${s.multiple}×: served ≥ 90% ${yes(a.served)}; TTFT p99 ≤ 3× unloaded ${yes(a.p99)}; refusals p99 < 5 ms ${yes(a.refusal)}; no failure, gateway up ${yes(a.clean)}${s.result.errorSamples.length ? ` (${s.result.errorSamples.slice(0, 3).join("; ")})` : ""}${behind}`,
      );
    }
  }
  if (aims.length > 0) out.push("Aims (issue 16) in this run:", "", ...aims, "");
  return out.join("\n");
}
