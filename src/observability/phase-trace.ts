import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { Phase, PHASE_CHANNEL, phaseChannelActive, publishPhase, type KeyedPhase } from "../engine/phase-channel.js";

/**
 * Where a streamed request's time to first chunk goes, phase by phase: an
 * opt-in probe for `load/first-chunk-phases.ts`. Off unless the process
 * starts with `SPILLWAY_PHASE_TRACE=<file>`; then it subscribes to the
 * phases published on `spillway:phase` (src/engine/phase-channel.ts) and,
 * every second, writes to that file as JSON:
 *
 * - `gaps`: the medians of the gaps between every phase (arrived … first
 *   bytes flushed), from requests that had the process to themselves: a
 *   request during which another one arrived is dropped (the engine's
 *   phases carry no request identity, so the stamps would mix). Use it at
 *   low rates.
 * - `doors`: per door, p50/p90/p99 of arrived → first chunk at the door,
 *   first chunk at the door → first bytes handed to the socket, and their
 *   sum, from the door's keyed phases (each names its request), so it holds
 *   at any rate, under load too. SSE hands its bytes to the socket in the
 *   cork of its flush; gRPC's go when Node's HTTP/2 session sends its
 *   pending frames, from a native immediate (the check phase of the loop),
 *   stamped by an immediate queued after the first write, or by the HTTP/2
 *   write callback when that comes first (the socket took the bytes at
 *   once). For gRPC, `flushToWritten` is the time from there to the write
 *   callback (0 when it came first; longer when the socket was full, e.g.
 *   a client slow to read).
 * - `doors.*.upstream`: per door, the same requests' path to the upstream
 *   and back, p50/p90/p99 of each step: arrived → the door's handler has
 *   the request (`body read`, keyed by the door) → the upstream request is
 *   dispatched (the provider calls undici) → undici writes its headers to
 *   the socket (`undici:client:sendHeaders`; on a reused keep-alive socket
 *   undici first waits for the check phase) → the upstream's response
 *   headers (`undici:request:headers`) → first chunk at the door. The
 *   dispatch is tied to the request whose handler ran last (the chain from
 *   handler to undici runs without a macrotask between); a request whose
 *   steps did not all come, in order, is left out.
 * - `doors.*.arrivedWith`: per door, p50/p90/p99 over requests of how many
 *   requests of that door arrived in the same turn of the event loop (up to
 *   its check phase) as it did: HTTP/2 hands a door many calls from one
 *   socket read, HTTP/1.1 one per connection.
 *
 * SIGUSR2 clears what was gathered (the script sends it after its warm-up).
 */
export const TracePhase = Phase;

/** One phase: its index in {@link TRACE_PHASE_NAMES}. */
export type TracePhase = Phase;

/** Phase names, in order, as the output file names them. */
export const TRACE_PHASE_NAMES = [
  "arrived",
  "body read",
  "validated",
  "engine attempt",
  "provider opened",
  "upstream request sent",
  "upstream headers",
  "first chunk at the door",
  "first bytes flushed",
] as const;

/**
 * Publishes phase `p` (see {@link publishPhase}); with `key` (the door's
 * object for the request) and `door`, as a keyed phase that follows one
 * request among many. A no-op unless something subscribes.
 */
export function tracePhase(p: TracePhase, key?: object, door?: string): void {
  publishPhase(p, key, door);
}

const file = process.env["SPILLWAY_PHASE_TRACE"];

/** Whether anything subscribes to the phases (the probe is on, or a test listens): gates trace-only work such as an extra immediate. */
export function phaseTraceActive(): boolean {
  return phaseChannelActive();
}
const rows: number[][] = [];
/** Requests kept (the newest), and requests followed at once by key. */
const MAX_ROWS = 100_000;
let current: number[] | undefined;

/** A request followed by its key: performance.now() at arrival and at its first chunk at the door. */
interface Followed {
  readonly door: string;
  readonly arrived: number;
  firstChunk: number;
  flushed: number;
  /** The door's handler had the request (keyed `body read`), the provider dispatched upstream, undici wrote the headers, the upstream's headers came: 0 until then. */
  handler: number;
  dispatched: number;
  upstreamWritten: number;
  upstreamHeaders: number;
}
const followed = new Map<object, Followed>();
/** Per door: [arrived → first chunk, first chunk → flushed, arrived → flushed] in ms, one row per request. */
const keyed = new Map<string, Array<[number, number, number]>>();
/** Per door (gRPC): first flush → the transport's write callback, ms. */
const written = new Map<string, number[]>();
/** Flushed requests whose write callback is still to come (gRPC). */
const awaitingWrite = new Map<object, Followed>();
/** Per door: [arrived → handler, → dispatched, → upstream headers written, → upstream response headers, → first chunk at the door] in ms. */
const upstreamRows = new Map<string, number[][]>();
/** The request whose handler ran last and has not dispatched upstream yet. */
let chain: Followed | undefined;
/** Per door: for each request, how many of that door's requests arrived in its loop turn. */
const arrivedWith = new Map<string, number[]>();
/** Arrivals per door in the current loop turn; undefined until one comes (then an immediate closes the turn). */
let turn: Map<string, number> | undefined;

function countArrival(door: string): void {
  if (turn === undefined) {
    turn = new Map();
    setImmediate(closeTurn);
  }
  turn.set(door, (turn.get(door) ?? 0) + 1);
}

function closeTurn(): void {
  for (const [door, n] of turn ?? []) {
    let list = arrivedWith.get(door);
    if (!list) arrivedWith.set(door, (list = []));
    for (let i = 0; i < n && list.length < MAX_ROWS; i++) list.push(n);
  }
  turn = undefined;
}
/** undici's request objects → the door's request that dispatched them. */
const byUndici = new WeakMap<object, Followed>();

function stamp(p: Phase, t: number): void {
  if (p === Phase.Arrived) {
    // A request still on its way to its first flush is dropped: its stamps would mix with this one's.
    if (current && current.length <= Phase.FirstFlush) rows.pop();
    current = [t];
    rows.push(current);
    if (rows.length > MAX_ROWS) rows.splice(0, rows.length - MAX_ROWS);
    return;
  }
  if (current && current.length === p) current.push(t);
}

function recordWritten(door: string, ms: number): void {
  let list = written.get(door);
  if (!list) written.set(door, (list = []));
  if (list.length < MAX_ROWS) list.push(ms);
}

function stampKeyed(m: KeyedPhase, t: number): void {
  if (m.phase === Phase.Arrived) {
    if (followed.size >= MAX_ROWS) followed.clear();
    countArrival(m.door);
    followed.set(m.key, { door: m.door, arrived: t, firstChunk: 0, flushed: 0, handler: 0, dispatched: 0, upstreamWritten: 0, upstreamHeaders: 0 });
    return;
  }
  if (m.phase === Phase.BodyRead) {
    const f = followed.get(m.key);
    if (f !== undefined && f.handler === 0) {
      f.handler = t;
      chain = f;
    }
    return;
  }
  if (m.phase === Phase.FirstWritten) {
    const w = awaitingWrite.get(m.key);
    if (w !== undefined) {
      awaitingWrite.delete(m.key);
      recordWritten(w.door, t - w.flushed);
      return;
    }
    // The socket took the bytes at once: the write callback came before the stamp queued after the write, and is the flush.
  }
  const f = followed.get(m.key);
  if (f === undefined) return;
  if (m.phase === Phase.FirstChunk) {
    if (f.firstChunk === 0) {
      f.firstChunk = t;
      recordUpstream(f);
    }
  } else if ((m.phase === Phase.FirstFlush || m.phase === Phase.FirstWritten) && f.firstChunk !== 0) {
    followed.delete(m.key);
    f.flushed = t;
    if (m.phase === Phase.FirstWritten) recordWritten(f.door, 0);
    else {
      if (awaitingWrite.size >= MAX_ROWS) awaitingWrite.clear();
      awaitingWrite.set(m.key, f);
    }
    let list = keyed.get(f.door);
    if (!list) keyed.set(f.door, (list = []));
    if (list.length < MAX_ROWS) list.push([f.firstChunk - f.arrived, t - f.firstChunk, t - f.arrived]);
  }
}

/** Keeps `f`'s path to the upstream when every step came, in order. */
function recordUpstream(f: Followed): void {
  const steps = [f.arrived, f.handler, f.dispatched, f.upstreamWritten, f.upstreamHeaders, f.firstChunk];
  for (let i = 1; i < steps.length; i++) if (steps[i]! === 0 || steps[i]! < steps[i - 1]!) return;
  let list = upstreamRows.get(f.door);
  if (!list) upstreamRows.set(f.door, (list = []));
  if (list.length < MAX_ROWS) list.push(steps.slice(1).map((s, i) => s - steps[i]!));
}

/** Names of the steps in {@link upstreamRows}, as the output file names them. */
const UPSTREAM_STEPS = ["arrived → handler", "handler → upstream dispatched", "dispatched → upstream request written", "written → upstream headers", "upstream headers → first chunk at the door"] as const;

/** p50/p90/p99 of `xs` (sorted in place), ms to the µs. */
function percentiles(xs: number[]): { p50: number; p90: number; p99: number } {
  xs.sort((a, b) => a - b);
  const at = (q: number): number => Math.round((xs[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN) * 1000) / 1000;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

if (file !== undefined) {
  subscribe(PHASE_CHANNEL, (message) => {
    const t = performance.now();
    if (typeof message === "number") {
      if (message === Phase.UpstreamSent && chain !== undefined && chain.dispatched === 0) chain.dispatched = t;
      return stamp(message as Phase, t);
    }
    const m = message as KeyedPhase;
    stamp(m.phase, t);
    stampKeyed(m, t);
  });
  subscribe("undici:request:create", (message) => {
    if (chain === undefined || chain.dispatched === 0) return;
    byUndici.set((message as { request: object }).request, chain);
    chain = undefined;
  });
  subscribe("undici:client:sendHeaders", (message) => {
    const f = byUndici.get((message as { request: object }).request);
    if (f !== undefined && f.upstreamWritten === 0) f.upstreamWritten = performance.now();
  });
  subscribe("undici:request:headers", (message) => {
    const f = byUndici.get((message as { request: object }).request);
    if (f !== undefined && f.upstreamHeaders === 0) f.upstreamHeaders = performance.now();
  });
  process.on("SIGUSR2", () => {
    rows.length = 0;
    current = undefined;
    followed.clear();
    keyed.clear();
    written.clear();
    awaitingWrite.clear();
    upstreamRows.clear();
    arrivedWith.clear();
    chain = undefined;
  });
  setInterval(() => {
    const done = rows.filter((r) => r.length > Phase.FirstFlush);
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const gaps = TRACE_PHASE_NAMES.slice(1).map((name, i) => ({ from: TRACE_PHASE_NAMES[i], to: name, p50Ms: median(done.map((r) => r[i + 1]! - r[i]!)) }));
    const doors = Object.fromEntries(
      [...keyed].map(([door, list]) => [
        door,
        {
          requests: list.length,
          arrivedToFirstChunk: percentiles(list.map((r) => r[0])),
          firstChunkToFlush: percentiles(list.map((r) => r[1])),
          arrivedToFlush: percentiles(list.map((r) => r[2])),
          ...(written.has(door) ? { flushToWritten: percentiles(written.get(door)!) } : {}),
          ...(arrivedWith.has(door) ? { arrivedWith: percentiles(arrivedWith.get(door)!) } : {}),
          upstream: { requests: upstreamRows.get(door)?.length ?? 0, steps: UPSTREAM_STEPS.map((name, i) => ({ name, ...percentiles((upstreamRows.get(door) ?? []).map((r) => r[i]!)) })) },
        },
      ]),
    );
    writeFileSync(file, JSON.stringify({ requests: done.length, gaps, totalP50Ms: median(done.map((r) => r[Phase.FirstFlush]! - r[0]!)), doors }));
  }, 1000).unref();
}
