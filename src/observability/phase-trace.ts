import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { Phase, PHASE_CHANNEL, publishPhase } from "../engine/phase-channel.js";

/**
 * Where a streamed request's time to first chunk goes, phase by phase: an
 * opt-in probe for `load/first-chunk-phases.ts`. Off unless the process
 * starts with `SPILLWAY_PHASE_TRACE=<file>`; then it subscribes to the
 * phases published on `spillway:phase` (src/engine/phase-channel.ts), stamps
 * each phase of the request in flight and, every second, writes the medians
 * of the gaps to that file as JSON. A request during which another one
 * arrived is dropped (the stamps would mix), so the figures come from
 * requests that had the process to themselves: use it at low rates.
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
 * Publishes phase `p` (see {@link publishPhase}); kept for callers not yet
 * moved to the channel. A no-op unless something subscribes.
 */
export function tracePhase(p: TracePhase): void {
  publishPhase(p);
}

const file = process.env["SPILLWAY_PHASE_TRACE"];
const rows: number[][] = [];
/** Requests kept (the newest). */
const MAX_ROWS = 100_000;
let current: number[] | undefined;

function stamp(p: Phase): void {
  const t = performance.now();
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

if (file !== undefined) {
  subscribe(PHASE_CHANNEL, (message) => stamp(message as Phase));
  setInterval(() => {
    const done = rows.filter((r) => r.length > Phase.FirstFlush);
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const gaps = TRACE_PHASE_NAMES.slice(1).map((name, i) => ({ from: TRACE_PHASE_NAMES[i], to: name, p50Ms: median(done.map((r) => r[i + 1]! - r[i]!)) }));
    writeFileSync(file, JSON.stringify({ requests: done.length, gaps, totalP50Ms: median(done.map((r) => r[Phase.FirstFlush]! - r[0]!)) }));
  }, 1000).unref();
}
