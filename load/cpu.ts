/**
 * CPU per request (issue 16): each target's user+system CPU time from /proc
 * (every process of it: nginx master and worker, gateway primary and
 * worker) divided by the requests it completed, in a closed loop of 32
 * connections — autocannon for HTTP, the generated grpc-js client for gRPC
 * `Generate`, the `ws` client for realtime text responses. The fake
 * upstream's own CPU per request is read the same way in every turn: what a
 * target makes its upstream pay.
 *
 * Targets take turns — every (mode, target) once per round, over several
 * rounds — so host noise (the cores are shared) falls on all of them alike;
 * each figure is the median over the rounds, with the range.
 *
 * Per chunk: CPU per request of a 200-chunk stream minus that of a 2-chunk
 * stream, over the 198 chunks between them: the cost of one more chunk,
 * without the per-request part (connection, request parsing, routing,
 * upstream call setup).
 */
import type { Door } from "./loadgen.js";
import { mockModel, type MockShape } from "./mock-upstream.js";
import type { TurnJob, TurnWorker } from "./cannon.js";
import { cpuTree } from "./procs.js";
import { wsUrl } from "./scenarios.js";
import { log } from "./scenarios.js";

/** A process tree the CPU benchmark measures. */
export interface CpuTarget {
  /** Column label: `direct`, `nginx`, `spillway`, `spillway@before`, `portkey`. */
  readonly name: string;
  /** The process (its descendants included). */
  readonly pid: number;
  /** `http://127.0.0.1:P` of its OpenAI-compatible HTTP door. */
  readonly http: string;
  /** `127.0.0.1:P` of its gRPC door (gateways only). */
  readonly grpc?: string | undefined;
  /** Port of its realtime door (gateways with realtime profiles only). */
  readonly wsPort?: number | undefined;
  /** The model id to ask for a mock shape (gateways prefix `mock/`). */
  model(shape: MockShape): string;
  /** The realtime profile for a mock shape. */
  realtimeModel?(shape: MockShape): string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One measured mode: a door and the mock's answer shape. */
export interface CpuMode {
  /** Row key, e.g. `json`, `sse`, `grpc`, `ws`, `sse-c2`, `sse-c200`. */
  readonly id: string;
  readonly door: Door;
  readonly shape: MockShape;
}

/**
 * Streamed answers: role, 20 content chunks, finish, then usage and `[DONE]`,
 * each event its own write 1 ms apart (a real upstream writes events as they
 * are generated; written all at once, a relay would see one read per stream).
 */
export const STREAM_SHAPE: MockShape = { chunks: 20, bytes: 16, delayMs: 1, firstMs: 0 };
/** The two ends of the per-chunk difference, events written one by one 1 ms apart. */
export const SHORT_SHAPE: MockShape = { chunks: 2, bytes: 16, delayMs: 1, firstMs: 0 };
export const LONG_SHAPE: MockShape = { chunks: 200, bytes: 16, delayMs: 1, firstMs: 0 };
/** The same in a burst: the whole answer in one write (what a fast upstream's buffered stream looks like). */
export const SHORT_BURST: MockShape = { chunks: 2, bytes: 16, delayMs: 0, firstMs: 0 };
export const LONG_BURST: MockShape = { chunks: 200, bytes: 16, delayMs: 0, firstMs: 0 };

/** The modes of a full run, in the order of a round. */
export function cpuModes(quick: boolean): CpuMode[] {
  const base: CpuMode[] = [
    { id: "json", door: "json", shape: STREAM_SHAPE },
    { id: "sse", door: "sse", shape: STREAM_SHAPE },
    { id: "grpc", door: "grpc", shape: STREAM_SHAPE },
    { id: "ws", door: "ws", shape: STREAM_SHAPE },
  ];
  if (quick) return base;
  const perChunk: CpuMode[] = [];
  for (const door of ["sse", "grpc", "ws"] as const) {
    perChunk.push({ id: `${door}-c2`, door, shape: SHORT_SHAPE }, { id: `${door}-c200`, door, shape: LONG_SHAPE });
  }
  for (const door of ["sse", "grpc", "ws"] as const) {
    perChunk.push({ id: `${door}-burst-c2`, door, shape: SHORT_BURST }, { id: `${door}-burst-c200`, door, shape: LONG_BURST });
  }
  return [...base, ...perChunk];
}

/** The realtime profiles a gateway needs for the CPU modes: profile id → mock text model. */
export function cpuRealtimeProfiles(): Record<string, string> {
  return Object.fromEntries([STREAM_SHAPE, SHORT_SHAPE, LONG_SHAPE, SHORT_BURST, LONG_BURST].map((s) => [`mock/rt-${mockModel(s)}`, mockModel(s)]));
}

/** One turn's figures. */
export interface CpuSample {
  readonly round: number;
  readonly ok: number;
  readonly failed: number;
  readonly requestsPerS: number;
  /** The target's CPU µs per completed request. */
  readonly cpuUs: number;
  /** The mock upstream's CPU µs per completed request. */
  readonly mockCpuUs: number;
}

/** Every turn of one (mode, target), and the medians. */
export interface CpuRow {
  readonly mode: string;
  readonly door: Door;
  readonly target: string;
  readonly chunks: number;
  readonly samples: CpuSample[];
  /** Medians over the rounds (undefined when no turn completed a request). */
  readonly cpuUs: number | undefined;
  readonly mockCpuUs: number | undefined;
  readonly requestsPerS: number | undefined;
  readonly failed: number;
  readonly errorSamples: string[];
}

/** Settings of a CPU run. */
export interface CpuPlan {
  readonly rounds: number;
  readonly seconds: number;
  readonly connections: number;
}

/** The median of `xs` (undefined for none). */
export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function turnFor(t: CpuTarget, m: CpuMode, plan: CpuPlan): TurnJob | undefined {
  if (m.door === "json" || m.door === "sse") {
    return { kind: "cannon", job: { origin: t.http, model: t.model(m.shape), stream: m.door === "sse", expectChunks: m.shape.chunks, connections: plan.connections, seconds: plan.seconds, ...(t.headers ? { headers: t.headers } : {}) } };
  }
  if (m.door === "grpc" && t.grpc) {
    return { kind: "closed", job: { door: "grpc", target: t.grpc, model: t.model(m.shape), expectChunks: m.shape.chunks, mode: "closed", concurrency: plan.connections, seconds: plan.seconds } };
  }
  if (m.door === "ws" && t.wsPort !== undefined && t.realtimeModel) {
    return { kind: "closed", job: { door: "ws", target: wsUrl(t.wsPort, t.realtimeModel(m.shape)), model: "", expectChunks: m.shape.chunks, mode: "closed", concurrency: plan.connections, seconds: plan.seconds } };
  }
  return undefined;
}

/**
 * Runs every (mode, target) pair `plan.rounds` times, in turns, on `worker`;
 * `mockPid` is the fake upstream. A target a mode does not apply to (gRPC on
 * nginx) is skipped; `skip(target, mode)` drops more (e.g. Portkey's
 * streaming, which fails on Node 20).
 */
export async function cpuPerRequest(
  worker: TurnWorker,
  targets: readonly CpuTarget[],
  modes: readonly CpuMode[],
  mockPid: number,
  plan: CpuPlan,
  skip: (t: CpuTarget, m: CpuMode) => boolean = () => false,
): Promise<CpuRow[]> {
  const rows = new Map<string, { mode: string; door: Door; target: string; chunks: number; samples: CpuSample[]; failed: number; errorSamples: string[] }>();
  for (let round = 0; round < plan.rounds; round++) {
    for (const m of modes) {
      // Rotate the order each round: no target always runs right after the same neighbour.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        if (skip(t, m)) continue;
        const job = turnFor(t, m, plan);
        if (!job) continue;
        const key = `${m.id}\u0000${t.name}`;
        let row = rows.get(key);
        if (!row) {
          row = { mode: m.id, door: m.door, target: t.name, chunks: m.shape.chunks, samples: [], failed: 0, errorSamples: [] };
          rows.set(key, row);
        }
        const c0 = cpuTree(t.pid);
        const m0 = cpuTree(mockPid);
        let r;
        try {
          r = await worker.run(job);
        } catch (e) {
          row.errorSamples.push(String(e).slice(0, 300));
          log(`cpu ${m.id} ${t.name}: ${String(e).slice(0, 200)}`);
          continue;
        }
        const cpu = cpuTree(t.pid) - c0;
        const mock = cpuTree(mockPid) - m0;
        for (const s of r.errorSamples) if (row.errorSamples.length < 5 && !row.errorSamples.includes(s)) row.errorSamples.push(s);
        if (r.ok > 0) {
          const sample = { round, ok: r.ok, failed: r.failed, requestsPerS: r.requestsPerS, cpuUs: (cpu * 1000) / r.ok, mockCpuUs: (mock * 1000) / r.ok };
          row.samples.push(sample);
          log(`cpu ${m.id} ${t.name} round ${round + 1}: ${r.ok} ok, ${r.failed} failed, ${sample.cpuUs.toFixed(1)} µs/request (mock ${sample.mockCpuUs.toFixed(1)} µs)`);
        } else {
          row.errorSamples.push(`round ${round + 1}: no request completed (${r.failed} failed)`);
        }
        row.failed += r.failed;
      }
    }
  }
  return [...rows.values()].map((r) => ({
    ...r,
    cpuUs: median(r.samples.map((s) => s.cpuUs)),
    mockCpuUs: median(r.samples.map((s) => s.mockCpuUs)),
    requestsPerS: median(r.samples.map((s) => s.requestsPerS)),
  }));
}

/**
 * CPU µs per extra chunk of `door` for `target`: (200-chunk − 2-chunk) / 198,
 * from the medians; `burst`: the answers written in one piece.
 */
export function perChunkUs(rows: readonly CpuRow[], door: Door, target: string, burst = false): number | undefined {
  const k = burst ? `${door}-burst` : door;
  const long = rows.find((r) => r.mode === `${k}-c200` && r.target === target);
  const short = rows.find((r) => r.mode === `${k}-c2` && r.target === target);
  if (long?.cpuUs === undefined || short?.cpuUs === undefined) return undefined;
  return (long.cpuUs - short.cpuUs) / (long.chunks - short.chunks);
}
