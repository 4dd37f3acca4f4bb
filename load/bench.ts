/**
 * `npm run bench [-- options]`: the streaming benchmark. Starts the mock
 * upstream and the gateway as separate processes on loopback, runs each
 * measurement in a fresh load generator process, prints a markdown table and
 * writes it with the JSON next to it (`load/results/`, gitignored).
 *
 * Options:
 *   --quick              a smoke run, well under 2 minutes (what CI runs)
 *   --compare LIST       also measure, on the same mock in the same run:
 *                        `portkey` (installed on demand into load/.cache/),
 *                        `spillway@DIR` (another Spillway tree, e.g. a git
 *                        worktree of an older commit, for before/after),
 *                        `tracing` (this tree again with OpenTelemetry tracing on,
 *                        exporting to a sink in the bench process: CPU µs per stream on vs off)
 *   --workers N          gateway workers for the latency/throughput runs (default 1)
 *   --pin                gateway on CPU 0, mock and load generator on the other CPUs (taskset)
 *   --shed U             the gateway sheds new streams while its event loop is ≥ U busy (limits.maxEventLoopUtilization)
 *   --adaptive           keep the gateway's adaptive concurrency on (its default; off in the benchmark otherwise,
 *                        so a refusal does not count as a failed stream while capacity is measured)
 *   --adaptive-target MS[:SIGNAL], --adaptive-queue MS
 *                        limits.adaptiveConcurrency.targetDelayMs[/signal max|mean] / queueMs of the
 *                        overload runs' gateway (default: the gateway's defaults), to try a tuning;
 *                        a list of targets (5:max,25:max,10:mean) runs this tree once per target, in turns
 *   --capacity MODE      latency|closed|both (default both): which capacity the overload steps multiply —
 *                        latency-bound (limit off, open loop stepped up, highest rate with TTFT p99 ≤ 3×
 *                        the unloaded p99 and all served; used when measured) and/or closed loop
 *   --probe RATE         a quiet probe process beside each overload step, RATE streams/s (default 40; 0 off)
 *   --overload-seconds S length of each overload step (default 20)
 *   --unloaded-seconds S length of each door's one unloaded run, whose p99 divides every ratio (default 20:
 *                        a 5 s run's p99 rests on its 5 slowest streams and moved 24→42 ms between runs)
 *   --search-seconds S   length of each latency-bound capacity search step (default 5)
 *   --no-refusal-cost    skip the overload runs' refusal-cost measurement
 *   --bound MS           p99 TTFT bound of the max-rate search (default 50)
 *   --rates LIST         fixed rates in streams/s (default 500,1000,2000; quick: 500)
 *   --doors LIST         sse,grpc,ws (default: all; ws only if src/doors/ws exists)
 *   --only LIST          fixed,max,throughput,memory,voice,compare,cpu,overload,ttft (default: all
 *                        but ttft; --quick: all but overload and ttft)
 *                        ttft: added TTFT p50/p99 at --rates (default 1000/s) on sse and grpc
 *                        against the direct mock, and gRPC's against the gRPC floor (load/grpc-floor.ts),
 *                        two rounds in turns (use with --pin); with --compare spillway@DIR the
 *                        other tree's doors take turns with this one's in the same rounds
 *                        cpu: CPU µs per request in turns (direct, nginx relay when
 *                        /usr/sbin/nginx exists, Spillway, the --compare targets), load/cpu.ts
 *                        overload: capacity per door (limit off), then 2× and 4× it open loop
 *                        with adaptive concurrency on (load/overload.ts); with --compare
 *                        spillway@DIR the other tree takes turns with this one, door by door;
 *                        use with --pin
 *   --cpu-modes LIST     only these CPU modes (ids from load/cpu.ts: json,sse,sse-c2,sse-c200,…; default: all)
 *   --built              run every Spillway tree compiled (tsc → dist/, `node dist/main.js`, as `npm start`),
 *                        each built first; default: `tsx src/main.ts`
 *   --no-floor           no node-floor target in the CPU turns (load/node-floor.ts; --quick skips it too)
 *   --floor-client C     how the node-floor reads the upstream: request (default), dispatch (undici's
 *                        raw handler, as Spillway's streamed POSTs do), dispatch-nt, net (a lower bound)
 *   --voice-warmup W     the voice rows' unmeasured warm-up, just before each row on its gateway:
 *                        `measured` (default: as many callers as the row, so its turns no longer pay
 *                        for V8 compiling what that load makes hot) or `one` (one caller, as before)
 *   --warm-callers LIST  the warm-up's callers explicitly, e.g. `1` (the old behaviour) or `1,20`
 *                        (each voice-provider row measured on a fresh gateway per warm-up, in one run);
 *                        overrides --voice-warmup. Warm-up turns per caller: 3 (--quick: 1)
 *   --session-turns LIST turns per realtime session in the voice-provider rows, e.g. `1,5` (default 1:
 *                        a fresh session per turn, so every turn pays its upstream connects; 5: calls
 *                        of five turns, the Deepgram socket kept across them); each entry is measured
 *                        on a fresh gateway, its rows' turns per caller rounded up to a multiple of it
 *   --voice-rounds N     the voice-provider rows N times (default 1); with --compare spillway@DIR
 *                        each round runs this tree and the other trees in turns (order flips)
 *   --out DIR            where to write bench-*.json / .md (default load/results)
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Door, JobResult } from "./loadgen.js";
import { mockModel, type MockShape } from "./mock-upstream.js";
import { buildSpillway, portkeyVersion, ROOT, setPinning, startGrpcFloor, startMock, startPortkey, startSpillway, type Proc } from "./procs.js";
import { GRPC_FLOOR, markdown, overFloor, type BenchResults, type TtftRow } from "./report.js";
import { fixedRates, log, maxRate, memory, MEMORY_SETTLE, throughput, wsUrl, type MemorySettle, type Target } from "./scenarios.js";
import { sessionPlan, warmedVoiceRows, warmupLabel, type VoiceWarmupPlan } from "./voice.js";
import { FLOOR_MS, voiceProviderTurns } from "./voice-providers.js";
import { assertLoopback } from "./util.js";
import { createServer as createHttpServer, type Server } from "node:http";
import { startTurnWorker } from "./cannon.js";
import { cpuModes, cpuPerRequest, cpuRealtimeProfiles, type CpuTarget } from "./cpu.js";
import { freePort, nginxAvailable, NGINX_BIN, startNginx } from "./nginx.js";
import { spawnNodeFloor, type FloorClient } from "./node-floor.js";
import { baselineCapacity, doorBaseline, fillWith, idleWait, overloadDoor, refusalCost, unloadedRun, type DoorBaseline, type OverloadPlan, type OverloadRow, type RefusalCostRow } from "./overload.js";
import { parseAdaptiveTargets, type CapacityMode } from "./overload-capacity.js";

/** OTLP sinks of `--compare tracing`, closed at the end. */
const sinks: Server[] = [];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    compare: { type: "string", default: "" },
    workers: { type: "string", default: "1" },
    bound: { type: "string", default: "50" },
    rates: { type: "string" },
    doors: { type: "string" },
    only: { type: "string" },
    out: { type: "string", default: join(ROOT, "load/results") },
    pin: { type: "boolean", default: false },
    shed: { type: "string" },
    adaptive: { type: "boolean" },
    "adaptive-target": { type: "string" },
    "adaptive-queue": { type: "string" },
    capacity: { type: "string", default: "both" },
    probe: { type: "string", default: "40" },
    "overload-seconds": { type: "string" },
    "unloaded-seconds": { type: "string" },
    "search-seconds": { type: "string", default: "5" },
    "no-refusal-cost": { type: "boolean", default: false },
    "cpu-modes": { type: "string" },
    "no-floor": { type: "boolean", default: false },
    "floor-client": { type: "string", default: "request" },
    built: { type: "boolean", default: false },
    "voice-warmup": { type: "string", default: "measured" },
    "warm-callers": { type: "string" },
    "voice-rounds": { type: "string", default: "1" },
    "session-turns": { type: "string", default: "1" },
  },
});

const quick = values.quick;
if (values["voice-warmup"] !== "measured" && values["voice-warmup"] !== "one") throw new Error(`--voice-warmup: measured or one, not ${values["voice-warmup"]}`);
/** The voice rows' warm-ups (one gateway per entry for the provider rows): `--warm-callers`, else `--voice-warmup`. */
const voiceWarmups: VoiceWarmupPlan[] = (values["warm-callers"] !== undefined ? values["warm-callers"].split(",").map(Number) : [values["voice-warmup"] === "one" ? 1 : ("measured" as const)]).map((callers) => {
  if (callers !== "measured" && !(Number.isInteger(callers) && callers > 0)) throw new Error(`--warm-callers: positive integers, not ${values["warm-callers"]}`);
  return { callers, turns: quick ? 1 : 3 };
});
const voiceRounds = Number(values["voice-rounds"]);
/** Turns per realtime session of the voice-provider rows, one gateway per entry (`--session-turns`). */
const sessionTurnsList = values["session-turns"].split(",").map((v) => {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--session-turns: positive integers, not ${values["session-turns"]}`);
  return n;
});
/** Overrides of the overload gateway's adaptive concurrency settings. */
const adaptiveTargets = values["adaptive-target"] === undefined ? [] : parseAdaptiveTargets(values["adaptive-target"]);
const adaptiveSettings: Record<string, number | string> = {
  ...(adaptiveTargets.length === 1 ? { ...adaptiveTargets[0]! } : {}),
  ...(values["adaptive-queue"] !== undefined ? { queueMs: Number(values["adaptive-queue"]) } : {}),
};
const workers = Number(values.workers);
if (!["latency", "closed", "both"].includes(values.capacity)) throw new Error(`--capacity: latency, closed or both, not ${values.capacity}`);
/** `--capacity`: which capacity the overload steps multiply (both: the latency-bound one, the closed loop shown). */
const capacityMode = values.capacity as CapacityMode;
/** `--probe`: streams/s of the quiet probe beside each overload step (0: none). */
const probeRate = Number(values.probe);
/** `--search-seconds`: length of each step of the latency-bound capacity search. */
const searchSeconds = Number(values["search-seconds"]);
const boundMs = Number(values.bound);
const wsExists = existsSync(join(ROOT, "src/doors/ws/realtime-door.ts"));
const doors = new Set((values.doors ?? (wsExists ? "sse,grpc,ws" : "sse,grpc")).split(",") as Door[]);
if (!wsExists) doors.delete("ws");
const only = new Set((values.only ?? (quick ? "fixed,max,throughput,memory,voice,compare,cpu" : "fixed,max,throughput,memory,voice,compare,cpu,overload")).split(","));
const compare = values.compare.split(",").filter(Boolean);
/** `--compare spillway@DIR` trees: name and root. */
const compareTrees = compare.filter((c) => c.startsWith("spillway@")).map((c) => {
  const root = c.slice("spillway@".length);
  return { root, name: `spillway@${root.replace(/\/+$/, "").split("/").pop()}` };
});
// --pin: the gateway(s) on CPU 0, the mock and the load generators on CPU 1 (taskset).
if (values.pin) setPinning({ gateway: "0", others: availableParallelism() > 2 ? `1-${availableParallelism() - 1}` : "1" });

/** Short streams for latency: 20 chunks of 16 characters, 10 ms apart. */
const RATE_SHAPE: MockShape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
/** Long, fast streams for chunks/s: 200 chunks, sent as fast as the socket takes them. */
const BULK_SHAPE: MockShape = { chunks: 200, bytes: 16, delayMs: 0, firstMs: 0 };
/** Slow streams for memory: a chunk every 5 s. */
const SLOW_SHAPE: MockShape = { chunks: 1000, bytes: 16, delayMs: 5000, firstMs: 0 };

/** A smoke run's memory rows: shorter settling (its figures are not for quoting). */
const QUICK_MEMORY_SETTLE: MemorySettle = { beforeMs: 300, heldMs: 500, sampleMs: 100, afterMs: 0 };

const plan = quick
  ? { rates: [500], rateSeconds: 1, maxRates: [100, 500], maxSeconds: 2, conc: 50, tputSeconds: 1, memory: [500], compareSeconds: 2, voice: [[1, 1]] as Array<[number, number]>, voiceProviders: [] as Array<[number, number]> }
  : { rates: [500, 1000, 2000], rateSeconds: 10, maxRates: [100, 200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000, 2500, 3000], maxSeconds: 5, conc: 100, tputSeconds: 5, memory: [1000, 10000], compareSeconds: 5, voice: [[1, 3], [4, 3], [8, 3]] as Array<[number, number]>, voiceProviders: [[1, 5], [20, 3]] as Array<[number, number]> };

if (values.rates) plan.rates = values.rates.split(",").map(Number);
/** `--only ttft`: rates (default 1000/s), seconds per run, rounds in turns. */
const ttftPlan = { rates: values.rates ? plan.rates : [1000], seconds: quick ? 2 : 10, rounds: quick ? 1 : 2 };
const load3 = (): number[] => loadavg().map((l) => Math.round(l * 100) / 100);

const realtimeProfiles = { ...Object.fromEntries([RATE_SHAPE, BULK_SHAPE, SLOW_SHAPE].map((s) => [`mock/rt-${mockModel(s)}`, mockModel(s)])), ...cpuRealtimeProfiles() };

/** CPU per request: rounds of turns (quick: one short round of the four main modes). */
const cpuPlan = quick ? { rounds: 1, seconds: 1, connections: 32 } : { rounds: 3, seconds: 3, connections: 32 };
/** Overload: capacity search, unloaded run, then 2× and 4× for 20 s (quick: a smoke of it). */
const overloadPlan: OverloadPlan = quick
  ? { unloadedRate: 50, unloadedSeconds: 2, multiples: [2], seconds: 3, drainMs: 5_000, capacityConcurrency: 100, capacitySeconds: 2 }
  : { unloadedRate: 100, unloadedSeconds: values["unloaded-seconds"] ? Number(values["unloaded-seconds"]) : 20, multiples: [2, 4], seconds: values["overload-seconds"] ? Number(values["overload-seconds"]) : 20, drainMs: 15_000, capacityConcurrency: 400, capacitySeconds: 5 };

function spillwayTargets(name: string, httpPort: number, grpcPort: number, pid: number | undefined): Target[] {
  const all: Target[] = [
    { name, door: "sse", url: `http://127.0.0.1:${httpPort}`, model: (s) => `mock/${mockModel(s)}`, pid },
    { name, door: "grpc", url: `127.0.0.1:${grpcPort}`, model: (s) => `mock/${mockModel(s)}`, pid },
    { name, door: "ws", url: "", model: () => "", pid },
  ];
  return all
    .filter((t) => doors.has(t.door))
    .map((t) => (t.door === "ws" ? { ...t, url: wsUrl(httpPort, `mock/rt-${mockModel(RATE_SHAPE)}`), model: (s: MockShape) => `mock/rt-${mockModel(s)}` } : t));
}

/** The WS door takes its model from the URL: re-aim the target per shape. */
function forShape(t: Target, s: MockShape): Target {
  if (t.door !== "ws") return t;
  const port = new URL(t.url).port;
  return { ...t, url: wsUrl(Number(port), t.model(s)) };
}

/** Portkey's logged TypeError, if any (`, its log: TypeError: …`). */
function typeErrorOf(log: string): string {
  const m = /TypeError: [^\n]*/.exec(log);
  return m ? `; its log: \`${m[0].trim()}\`` : "";
}

/**
 * The overload runs (load/overload.ts) on a fresh mock: for this tree and each
 * `--compare spillway@DIR` tree, what a refusal costs (a gateway whose stream
 * cap is full), then on a gateway with adaptive concurrency off every door's
 * unloaded run, then every door's capacities, then door by door
 * the 2×/4× steps on a gateway with it on, the trees taking turns (the order
 * flips every door).
 */
async function overloadRuns(others: ReadonlyArray<{ name: string; root: string }>, procs: Proc[]): Promise<NonNullable<BenchResults["overload"]>> {
  const loadStart = load3();
  const mock = await startMock();
  procs.push(mock);
  // This tree (once per --adaptive-target when several are given), then the compared trees.
  // The tuning knobs apply to this tree; a compared tree runs its own defaults.
  const variants: Array<{ name: string; root: string | undefined; settings: Record<string, number | string> }> =
    adaptiveTargets.length > 1
      ? adaptiveTargets.map((t) => ({ name: `spillway (${t.targetDelayMs} ms ${t.signal})`, root: undefined, settings: { ...adaptiveSettings, ...t } }))
      : [{ name: "spillway", root: undefined, settings: adaptiveSettings }];
  const trees = [...variants, ...others.map((o) => ({ ...o, settings: {} }))];
  const rtOf = (root: string | undefined): Record<string, string> => (root === undefined || existsSync(join(root, "src/doors/ws/realtime-door.ts")) ? realtimeProfiles : {});
  const started = async (o: Parameters<typeof startSpillway>[0]): ReturnType<typeof startSpillway> => {
    const g = await startSpillway(o);
    procs.push(g);
    return g;
  };
  const stop = async (g: Proc): Promise<void> => {
    await g.stop();
    procs.splice(procs.indexOf(g), 1);
  };
  const warm = async (ts: readonly Target[]): Promise<void> => {
    for (const t of ts) await throughput(forShape(t, RATE_SHAPE), 20, quick ? 1 : 2, RATE_SHAPE);
  };
  const costs: RefusalCostRow[] = [];
  // The refusal cost does not depend on the limit's settings: once per tree of code.
  for (const tree of values["no-refusal-cost"] ? [] : [variants[0]!, ...trees.slice(variants.length)]) {
    // What a refusal costs (CPU time: sound on a shared host), on a gateway whose stream cap is filled.
    const capped = await started({ mockPort: mock.port, workers, realtime: rtOf(tree.root), adaptive: true, adaptiveSettings: tree.settings, maxConcurrentStreams: 32, ...(tree.root ? { root: tree.root } : {}) });
    const ct = spillwayTargets(tree.root === undefined ? "spillway" : tree.name, capped.httpPort, capped.grpcPort, capped.child.pid).map((t) => forShape(t, RATE_SHAPE));
    await warm(ct);
    const worker = startTurnWorker();
    try {
      const filler = ct.find((t) => t.door === "sse") ?? ct[0]!;
      costs.push(...(await refusalCost(worker, ct, capped.child.pid!, RATE_SHAPE, fillWith(forShape(filler, SLOW_SHAPE), SLOW_SHAPE, 32), 32, quick ? 1 : 2, tree.root === undefined ? "spillway" : tree.name)));
    } finally {
      await worker.stop();
      await stop(capped);
    }
  }
  // Capacity: one gateway with the limit off per tree of code (the settings do not change its hot path).
  const code = (root: string | undefined): string => root ?? ".";
  const plains = new Map<string, { ts: Target[]; idle: ReturnType<typeof idleWait> }>();
  const gws = [];
  for (const tree of trees) {
    const base = { mockPort: mock.port, workers, realtime: rtOf(tree.root), ...(tree.root ? { root: tree.root } : {}) };
    if (!plains.has(code(tree.root))) {
      const plain = await started({ ...base, adaptive: false });
      // Latency from the schedule, as on the limit-on gateway: the unloaded p99 divides its figures.
      const ts = spillwayTargets(tree.root === undefined ? "spillway" : tree.name, plain.httpPort, plain.grpcPort, plain.child.pid).map((t) => ({ ...t, fromSchedule: true }));
      await warm(ts);
      plains.set(code(tree.root), { ts, idle: idleWait(plain.httpPort) });
    }
    const on = await started({ ...base, adaptive: true, adaptiveSettings: tree.settings });
    const onTargets = spillwayTargets(tree.name, on.httpPort, on.grpcPort, on.child.pid).map((t) => ({ ...t, fromSchedule: true }));
    await warm(onTargets);
    gws.push({ tree, on: onTargets, g: on, idle: idleWait(on.httpPort), httpPort: on.httpPort });
  }
  // Every door's unloaded run first, then every door's capacities (limit off), then the overload
  // steps: no door's divisor follows another door's capacity search, closed loop or 4x step (in
  // earlier runs the first door's divisor was the lowest four times of four; docs/PERFORMANCE.md
  // "overload6").
  const key = (door: Door, code: string): string => `${door} ${code}`;
  const unloaded = new Map<string, JobResult>();
  let flip = false;
  for (const door of doors) {
    flip = !flip;
    for (const [k, p] of flip ? [...plains].reverse() : plains) {
      const t = p.ts.find((q) => q.door === door);
      if (t) unloaded.set(key(door, k), await unloadedRun(forShape(t, RATE_SHAPE), RATE_SHAPE, overloadPlan, p.idle));
    }
  }
  const baselines = new Map<Door, Map<string, DoorBaseline>>();
  flip = false;
  for (const door of doors) {
    flip = !flip;
    const caps = new Map<string, DoorBaseline>();
    for (const [k, p] of flip ? [...plains].reverse() : plains) {
      const t = p.ts.find((q) => q.door === door);
      if (t) caps.set(k, await doorBaseline(forShape(t, RATE_SHAPE), RATE_SHAPE, overloadPlan, capacityMode, quick ? 1 : searchSeconds, p.idle, unloaded.get(key(door, k))));
    }
    baselines.set(door, caps);
  }
  const rows: OverloadRow[] = [];
  flip = false;
  for (const door of doors) {
    const order = flip ? [...gws].reverse() : gws;
    flip = !flip;
    const caps = baselines.get(door)!;
    // The same offered rates for every tree (their hot paths are compared at the same load): the mean capacity.
    const shared = caps.size > 0 ? Math.round([...caps.values()].reduce((a, c) => a + baselineCapacity(c, capacityMode), 0) / caps.size) : 0;
    for (const x of order) {
      const t = x.on.find((p) => p.door === door);
      const cap = caps.get(code(x.tree.root));
      if (!t || !cap) continue;
      const alive = (): boolean => x.g.child.exitCode === null && x.g.child.signalCode === null;
      rows.push(await overloadDoor(forShape(t, RATE_SHAPE), x.tree.name, x.g.child.pid!, alive, x.idle, RATE_SHAPE, overloadPlan, cap, shared, probeRate, x.httpPort));
    }
  }
  return { rows, refusalCost: costs, adaptiveSettings, loadAverage: { start: loadStart, end: load3() } };
}

async function main(): Promise<void> {
  const started = new Date();
  const procs: Proc[] = [];
  const notes: string[] = [];
  const results: BenchResults = {
    startedAt: started.toISOString(),
    command: `npm run bench --${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
    machine: { cores: availableParallelism(), node: process.version, cpu: cpus()[0]?.model ?? "?" },
    settings: { quick, workers, boundMs, doors: [...doors], plan, cpuPlan, overloadPlan, shapes: { rate: RATE_SHAPE, bulk: BULK_SHAPE, slow: SLOW_SHAPE } },
    fixedRates: [],
    maxRates: [],
    throughput: [],
    memory: [],
    voice: [],
    voiceProviders: [],
    compare: { rates: [], throughput: [], notes: [] },
    notes,
  };
  if (!wsExists) notes.push("WebSocket door: pending (src/doors/ws/ does not exist in this tree).");
  notes.push("No k6 binary on this machine: the load/*.js k6 scripts are checked to parse (test/bench-smoke.test.ts), not run.");
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.splice(0).map((p) => p.stop()));
  };
  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
  try {
    const mock = await startMock();
    procs.push(mock);
    const direct: Target = { name: "direct", door: "sse", url: `http://127.0.0.1:${mock.port}`, model: mockModel, pid: mock.child.pid };
    for (const t of [direct.url]) assertLoopback(new URL(t).hostname);
    const built = values.built;
    if (built) {
      for (const root of [ROOT, ...compare.filter((c) => c.startsWith("spillway@")).map((c) => c.slice("spillway@".length))]) {
        log(`building ${root} (tsc → dist/) …`);
        buildSpillway(root);
      }
      notes.push("Every Spillway target ran compiled (`--built`: tsc → dist/, `node dist/main.js`, as `npm start` does).");
    }
    const gw = await startSpillway({ mockPort: mock.port, workers, realtime: doors.has("ws") ? realtimeProfiles : {}, shed: values.shed === undefined ? undefined : Number(values.shed), adaptive: values.adaptive === true, built });
    procs.push(gw);
    const mine = spillwayTargets("spillway", gw.httpPort, gw.grpcPort, gw.child.pid);
    const others: Target[] = [];
    /** Other Spillway trees (`--compare spillway@DIR`), for the CPU turns. */
    const otherTrees: CpuTarget[] = [];
    for (const c of compare.filter((c) => c.startsWith("spillway@"))) {
      const root = c.slice("spillway@".length);
      const rtOther = existsSync(join(root, "src/doors/ws/realtime-door.ts")) ? cpuRealtimeProfiles() : {};
      const other = await startSpillway({ mockPort: mock.port, workers, realtime: rtOther, root, built });
      procs.push(other);
      const name = `spillway@${root.replace(/\/+$/, "").split("/").pop()}`;
      others.push({ name, door: "sse", url: `http://127.0.0.1:${other.httpPort}`, model: (s) => `mock/${mockModel(s)}`, pid: other.child.pid });
      otherTrees.push({
        name,
        pid: other.child.pid!,
        http: `http://127.0.0.1:${other.httpPort}`,
        grpc: `127.0.0.1:${other.grpcPort}`,
        ...(Object.keys(rtOther).length > 0 ? { wsPort: other.httpPort, realtimeModel: (s: MockShape) => `mock/rt-${mockModel(s)}` } : {}),
        model: (s) => `mock/${mockModel(s)}`,
      });
    }
    if (compare.includes("tracing")) {
      // The same tree with tracing on; the OTLP sink answers 200 and drops the spans (its CPU is the bench's, not the gateway's).
      const sink = createHttpServer((req, res) => req.resume().on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end()));
      await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
      sinks.push(sink);
      const endpoint = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
      const traced = await startSpillway({ mockPort: mock.port, workers, realtime: {}, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
      procs.push(traced);
      others.push(...spillwayTargets("spillway+tracing", traced.httpPort, traced.grpcPort, traced.child.pid).filter((t) => t.door !== "ws"));
    }

    // Warm-up: a fresh process runs cold (JIT, pools) and, open loop, never catches up on
    // the backlog it builds in its first second; every gateway door gets a few seconds of
    // traffic before anything is measured.
    for (const t of [...mine, ...others]) await throughput(forShape(t, RATE_SHAPE), 20, quick ? 1 : 3, RATE_SHAPE);

    if (only.has("ttft")) {
      // Direct (SSE to the mock), the gRPC floor (a bare grpc-js server streaming the same answer:
      // what the gRPC client and protocol cost with no gateway), then each tree's SSE and gRPC doors
      // (this tree, then the --compare spillway@DIR trees; the order of the trees flips every round),
      // at each rate; the rounds take turns so host noise hits them alike.
      const start = load3();
      const floor = await startGrpcFloor();
      procs.push(floor);
      const floorTarget: Target = { name: GRPC_FLOOR, door: "grpc", url: `127.0.0.1:${floor.port}`, model: mockModel, pid: floor.child.pid };
      await throughput(floorTarget, 20, quick ? 1 : 3, RATE_SHAPE);
      const trees: Target[][] = [
        mine.filter((t) => t.door === "sse" || t.door === "grpc"),
        ...otherTrees.map((o): Target[] => [
          { name: o.name, door: "sse", url: o.http, model: (s) => o.model(s), pid: o.pid },
          ...(o.grpc ? [{ name: o.name, door: "grpc" as const, url: o.grpc, model: (s: MockShape) => o.model(s), pid: o.pid }] : []),
        ]),
      ];
      const rounds: TtftRow[][] = [];
      for (let i = 0; i < ttftPlan.rounds; i++) {
        const order = i % 2 === 0 ? trees : [...trees].reverse();
        rounds.push(overFloor(await fixedRates([direct, floorTarget, ...order.flat()], ttftPlan.rates, ttftPlan.seconds, RATE_SHAPE)));
      }
      await floor.stop();
      procs.splice(procs.indexOf(floor), 1);
      results.ttft = { rounds, pinned: values.pin, adaptive: values.adaptive === true, loadAverage: { start, end: load3() }, trees: trees.map((t) => t[0]?.name ?? "?") };
    }
    if (only.has("cpu")) {
      const cpuTargets: CpuTarget[] = [{ name: "direct", pid: mock.child.pid!, http: direct.url, model: mockModel }];
      const cpuNotes: string[] = [];
      let nginx: (Proc & { port: number }) | undefined;
      if (nginxAvailable()) {
        nginx = await startNginx(mock.port);
        procs.push(nginx);
        cpuTargets.push({ name: "nginx", pid: nginx.child.pid!, http: `http://127.0.0.1:${nginx.port}`, model: mockModel });
        cpuNotes.push(`nginx: ${NGINX_BIN}, one worker, generated config (load/nginx.ts): proxy_pass to the mock over a keep-alive upstream, proxy_buffering off, no access log; CPU of master + worker.`);
      } else {
        cpuNotes.push(`nginx is not installed (${NGINX_BIN}): no relay floor in this run.`);
      }
      // The Node floor: uWS in, undici out, nothing else (load/node-floor.ts); a full run only.
      let floor: (Proc & { port: number }) | undefined;
      if (!quick && !values["no-floor"]) {
        floor = await spawnNodeFloor(mock.port, values["floor-client"] as FloorClient);
        procs.push(floor);
        cpuTargets.push({ name: "node-floor", pid: floor.child.pid!, http: `http://127.0.0.1:${floor.port}`, model: mockModel });
        cpuNotes.push(`node-floor: load/node-floor.ts --client ${values["floor-client"]}, one Node process, uWebSockets.js in and undici out (${values["floor-client"] === "request" ? "`request()` and its Readable" : values["floor-client"] === "net" ? "no: a hand-cut net.Socket client, a lower bound" : "`dispatch()` with a raw handler"}; Spillway's own parts): a whole answer read and sent in one \`end\`, a streamed one written chunk by chunk as it is read, no parsing, no logs or metrics.`);
      }
      cpuTargets.push(...otherTrees, {
        name: "spillway",
        pid: gw.child.pid!,
        http: `http://127.0.0.1:${gw.httpPort}`,
        grpc: `127.0.0.1:${gw.grpcPort}`,
        ...(doors.has("ws") ? { wsPort: gw.httpPort, realtimeModel: (s: MockShape) => `mock/rt-${mockModel(s)}` } : {}),
        model: (s) => `mock/${mockModel(s)}`,
      });
      let pk: (Proc & { output(): string }) | undefined;
      if (compare.includes("portkey")) {
        const pkPort = await freePort();
        pk = await startPortkey(pkPort);
        procs.push(pk);
        const headers = { "x-portkey-provider": "openai", "x-portkey-custom-host": `http://127.0.0.1:${mock.port}/v1`, authorization: "Bearer unused" };
        cpuTargets.push({ name: "portkey", pid: pk.child.pid!, http: `http://127.0.0.1:${pkPort}`, model: mockModel, headers });
        cpuNotes.push(`Portkey ${portkeyVersion()} (\`--headless\`, headers x-portkey-provider: openai, x-portkey-custom-host: the mock), non-streamed and streamed chat only.`);
      }
      cpuNotes.push(
        `Spillway: ${workers} worker${workers > 1 ? "s" : ""}, CPU of primary + worker${workers > 1 ? "s" : ""}; adaptive concurrency ${values.adaptive === true ? "on" : "off (so a refusal cannot pass for a cheap request)"}; gRPC turns: closed loop of ${cpuPlan.connections} calls on the generated grpc-js client; realtime turns: ${cpuPlan.connections} sessions back to back, each a new WebSocket + a text response (session setup included in its cost).`,
      );
      const worker = startTurnWorker();
      try {
        // Portkey: the two chat modes only (its streaming fails on Node 20; the row records whether it still does).
        // A fresh Node process runs cold: the floor gets the gateways' warm-up (a few seconds of both chat modes).
        if (floor) {
          for (const stream of [false, true]) {
            await worker.run({ kind: "cannon", job: { origin: `http://127.0.0.1:${floor.port}`, model: mockModel(RATE_SHAPE), stream, expectChunks: RATE_SHAPE.chunks, connections: 20, seconds: 2 } });
          }
        }
        const wanted = values["cpu-modes"]?.split(",");
        const modes = cpuModes(quick).filter((m) => !wanted || wanted.includes(m.id));
        const rows = await cpuPerRequest(worker, cpuTargets, modes, mock.child.pid!, cpuPlan, (t, m) => t.name === "portkey" && m.id !== "json" && m.id !== "sse");
        results.cpu = { plan: cpuPlan, rows, notes: cpuNotes };
      } finally {
        await worker.stop();
        for (const p of [pk, nginx, floor]) {
          if (!p) continue;
          await p.stop();
          procs.splice(procs.indexOf(p), 1);
        }
      }
    }
    if (only.has("fixed")) {
      const targets = [direct, ...mine.filter((t) => t.door === "sse"), ...others, ...mine.filter((t) => t.door !== "sse")];
      results.fixedRates.push(...(await fixedRates(targets, plan.rates, plan.rateSeconds, RATE_SHAPE)));
    }
    if (only.has("max")) {
      for (const t of [direct, ...mine.filter((t) => t.door !== "ws"), ...others]) {
        results.maxRates.push(await maxRate(t, plan.maxRates, plan.maxSeconds, boundMs, RATE_SHAPE));
      }
    }
    if (only.has("throughput")) {
      for (const t of [direct, ...mine, ...others]) results.throughput.push(await throughput(forShape(t, BULK_SHAPE), plan.conc, plan.tputSeconds, BULK_SHAPE));
    }
    if (only.has("voice") && doors.has("ws")) {
      // Realtime sessions streaming microphone audio (the text `ws` rows above skip the speech engines),
      // each row after its warm-up (the first --warm-callers entry: this gateway serves every row).
      const url = wsUrl(gw.httpPort, `mock/rt-${mockModel(RATE_SHAPE)}`);
      for (const row of await warmedVoiceRows(url, gw.child.pid!, plan.voice, voiceWarmups[0])) {
        results.voice.push({ ...row, target: "spillway" });
        log(`voice ×${row.callers} (warm-up ${warmupLabel(row.warmup)}): ${row.turns} turns, ${row.errors} errors, first audio p50 ${row.firstAudio.p50} ms, ${row.cpuMsPerTurn} ms CPU/turn`);
      }
      // The same turns through streaming speech providers (fakes at realistic latencies): what the gateway adds.
      // A fresh gateway per tree, warm-up and round; the trees take turns (the order flips every round).
      // Not in --quick: it starts two more processes, and CI's smoke run has a time budget.
      const voiceTrees: Array<{ name: string; root: string | undefined }> = [{ name: "spillway", root: undefined }, ...compareTrees.filter((t) => existsSync(join(t.root, "src/doors/ws/realtime-door.ts")))];
      for (let round = 1; plan.voiceProviders.length > 0 && round <= voiceRounds; round++) {
        for (const tree of round % 2 === 0 ? [...voiceTrees].reverse() : voiceTrees) {
          for (const sessionTurns of sessionTurnsList) {
            for (const warmup of voiceWarmups) {
              for (const row of await voiceProviderTurns(mock.port, sessionPlan(plan.voiceProviders, sessionTurns), { root: tree.root, warmup, sessionTurns })) {
                results.voiceProviders.push({ ...row, target: tree.name, round });
                log(
                  `voice (deepgram → text → elevenlabs) ${tree.name} round ${round} ×${row.callers} (warm-up ${warmupLabel(row.warmup)}, ${sessionTurns} turns/session): ${row.turns} turns, ${row.errors} errors, first audio p50 ${row.firstAudio.p50} ms (providers ${FLOOR_MS} ms, gateway +${row.addedP50} ms), ${row.cpuMsPerTurn} ms CPU/turn`,
                );
              }
            }
          }
        }
      }
    }
    if (only.has("compare") && compare.includes("portkey")) {
      const pkPort = await freePort();
      const pk = await startPortkey(pkPort);
      procs.push(pk);
      const headers = { "x-portkey-provider": "openai", "x-portkey-custom-host": `http://127.0.0.1:${mock.port}/v1`, authorization: "Bearer unused" };
      const json: Target[] = [
        { ...direct, door: "json" },
        { name: "spillway", door: "json", url: `http://127.0.0.1:${gw.httpPort}`, model: (s) => `mock/${mockModel(s)}`, pid: gw.child.pid },
        { name: "portkey", door: "json", url: `http://127.0.0.1:${pkPort}`, model: mockModel, headers, pid: pk.child.pid },
      ];
      const cShape = { ...RATE_SHAPE, delayMs: 0 };
      for (const t of json) results.compare.throughput.push(await throughput(t, plan.conc, plan.compareSeconds, cShape));
      results.compare.rates.push(...(await fixedRates(json, quick ? [200] : [200, 500], plan.compareSeconds, cShape)));
      // Streamed chat through Portkey, to record whether it works on this Node.
      const probe = await throughput({ name: "portkey", door: "sse", url: `http://127.0.0.1:${pkPort}`, model: mockModel, headers }, 1, 1, RATE_SHAPE);
      results.compare.notes.push(
        `Portkey ${portkeyVersion()} (\`--headless\`, headers x-portkey-provider: openai, x-portkey-custom-host: the mock) is compared on non-streamed requests.`,
        probe.result.ok > 0
          ? `A streamed chat through Portkey worked in this run (${probe.result.ok} streams).`
          : `Streamed chat through Portkey failed on Node ${process.version}: ${probe.result.errorSamples.join("; ") || "no stream"}${typeErrorOf(pk.output())}, so streaming is not compared.`,
        "Time is from the scheduled send to the whole response; `added` is against the direct run at the same rate.",
      );
      await pk.stop();
      procs.splice(procs.indexOf(pk), 1);
    }
    await stopAll();
    if (only.has("overload")) {
      results.overload = await overloadRuns(compareTrees, procs);
      await stopAll();
    }
    // Memory last, each door on a fresh gateway so earlier runs' heap does not blur it.
    if (only.has("memory")) {
      const mock2 = await startMock();
      procs.push(mock2);
      for (const door of ["sse", "grpc", "ws"] as const) {
        if (!doors.has(door)) continue;
        for (const n of door === "ws" ? plan.memory.slice(0, 1) : plan.memory) {
          // One process holds at most ~20 000 sockets here (ulimit -n): 10 000 streams need
          // 10 000 client + 10 000 upstream sockets, so those runs use 2 workers.
          const w = n > 5000 && door !== "grpc" ? 2 : 1;
          const g = await startSpillway({ mockPort: mock2.port, workers: w, realtime: door === "ws" ? realtimeProfiles : {} });
          const t = spillwayTargets("spillway", g.httpPort, g.grpcPort, g.child.pid).find((x) => x.door === door)!;
          try {
            results.memory.push(await memory(forShape(t, SLOW_SHAPE), g.child.pid!, n, w, SLOW_SHAPE, quick ? QUICK_MEMORY_SETTLE : MEMORY_SETTLE));
          } finally {
            await g.stop();
          }
        }
      }
    }
  } finally {
    await stopAll();
    for (const s of sinks) s.close();
  }
  const md = markdown(results);
  mkdirSync(values.out, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const base = join(values.out, `bench-${quick ? "quick-" : ""}${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`${md}\n`);
  log(`wrote ${base}.json and ${base}.md`);
  // A smoke run is green only if every stream it measured completed (latency is not judged).
  const failed = [
    ...results.fixedRates.filter((r) => r.result.ok < r.result.started).map((r) => `${r.target}/${r.door} at ${r.rate}/s: ${r.result.started - r.result.ok} of ${r.result.started} streams failed`),
    ...results.throughput.filter((r) => r.result.errors > 0).map((r) => `${r.target}/${r.door} throughput: ${r.result.errors} streams failed`),
    ...results.memory.filter((r) => r.held < r.streams).map((r) => `${r.target}/${r.door} memory: held ${r.held} of ${r.streams}`),
    ...results.voice.filter((r) => r.errors > 0).map((r) => `voice ×${r.callers}: ${r.errors} turns failed (${r.errorSamples.join("; ")})`),
    ...(results.cpu?.rows ?? []).filter((r) => r.target !== "portkey" && (r.failed > 0 || r.samples.length === 0)).map((r) => `cpu ${r.mode} ${r.target}: ${r.failed} requests failed (${r.errorSamples.join("; ")})`),
    ...(results.overload?.rows ?? []).flatMap((r) => r.steps.filter((s) => !s.alive).map((s) => `overload ${r.door} ${s.multiple}×: the gateway died`)),
    ...results.voiceProviders.filter((r) => r.errors > 0).map((r) => `voice (providers) ×${r.callers}: ${r.errors} turns failed (${r.errorSamples.join("; ")})`),
  ];
  if (quick && failed.length > 0) throw new Error(`streams failed in the smoke run:\n${failed.join("\n")}`);
}

const watchdog = setTimeout(() => {
  log("the run took over 60 minutes: stopping");
  process.exit(3);
}, 60 * 60_000);
watchdog.unref();
main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error("bench failed:", e);
    process.exit(1);
  },
);
