/**
 * The voice measurement of `npm run bench`: realtime sessions streaming
 * microphone audio. Runs load/realtime-latency.ts (a separate process) against
 * the gateway's realtime door with C callers at once, each speaking real-time
 * PCM into a fresh session per turn (server VAD, local/stt → mock text →
 * local/tts), and records the time from `speech_stopped` to the first
 * synthesized audio, and the gateway's CPU time per turn (speech engines
 * included).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { cpuTree, minorFaultsTree, pinOthers, ROOT, TSX } from "./procs.js";
import type { Summary } from "./stats.js";

/**
 * The warm-up a voice row had on its gateway just before it: `callers` at
 * once, `turns` each, not measured. `measured` (the bench's default) means as
 * many callers as the row: with one caller, a 20-caller row paid for V8
 * compiling the code that load makes hot (~10–17 ms per turn, wave 8).
 */
export interface VoiceWarmup {
  readonly callers: number;
  readonly turns: number;
  /** How the caller count was chosen: `measured` (= the row's callers) or `explicit` (`--warm-callers`). */
  readonly mode: "measured" | "explicit";
}

/** A warm-up plan: `measured` (the row's own caller count) or a fixed count; turns per caller. */
export interface VoiceWarmupPlan {
  readonly callers: number | "measured";
  readonly turns: number;
}

/** The warm-up of a row of `callers` under `plan`. */
export function warmupFor(plan: VoiceWarmupPlan, callers: number): VoiceWarmup {
  return plan.callers === "measured" ? { callers, turns: plan.turns, mode: "measured" } : { callers: plan.callers, turns: plan.turns, mode: "explicit" };
}

/** How a row was warmed up, for tables: `20 × 3 (measured)`, `none`, `–` (older results). */
export function warmupLabel(w: VoiceWarmup | undefined): string {
  if (!w) return "–";
  if (w.turns <= 0) return "none";
  return `${w.callers} × ${w.turns}${w.mode === "measured" ? " (measured)" : ""}`;
}

/**
 * Runs each plan row (callers, turns) on `url`, each after its warm-up
 * (`warm`, unmeasured; none when absent or 0 turns); rows carry their warm-up.
 */
export async function warmedVoiceRows(url: string, pid: number, plan: ReadonlyArray<readonly [number, number]>, warm: VoiceWarmupPlan | undefined, sessionTurns = 1): Promise<VoiceRow[]> {
  const rows: VoiceRow[] = [];
  for (const [callers, turns] of plan) {
    const w = warm ? warmupFor(warm, callers) : undefined;
    if (w && w.turns > 0) await voiceTurns(url, pid, w.callers, w.turns, sessionTurns);
    rows.push({ ...(await voiceTurns(url, pid, callers, turns, sessionTurns)), ...(w ? { warmup: w } : {}) });
  }
  return rows;
}

/** `plan` (callers, turns per caller) for sessions of `sessionTurns` turns: each row's turns rounded up to a multiple of it, so every session has them all. */
export function sessionPlan(plan: ReadonlyArray<readonly [number, number]>, sessionTurns: number): Array<[number, number]> {
  return plan.map(([callers, turns]) => [callers, Math.ceil(turns / sessionTurns) * sessionTurns]);
}

/** One concurrency level of voice turns. */
export interface VoiceRow {
  readonly callers: number;
  readonly turns: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Seconds of speech per turn. */
  readonly utteranceS: number;
  /** From `speech_stopped`, ms. */
  readonly transcribed: Summary;
  readonly firstAudio: Summary;
  /** From `speech_stopped` to `response.created` and to the first text delta, ms (absent in older results). */
  readonly created?: Summary | undefined;
  readonly firstText?: Summary | undefined;
  /** Gateway CPU (its processes and the speech engines they ran) per completed turn, ms. */
  readonly cpuMsPerTurn: number | undefined;
  /** Gateway minor page faults (fresh pages touched) per completed turn (absent in older results). */
  readonly minorFaultsPerTurn?: number | undefined;
  /** The unmeasured warm-up just before this row (absent in older results and when the caller ran none). */
  readonly warmup?: VoiceWarmup | undefined;
  /** The tree measured (`spillway`, or `spillway@DIR` with `--compare`; absent in older results). */
  readonly target?: string | undefined;
  /** The round of `--voice-rounds` (1-based; absent in older results). */
  readonly round?: number | undefined;
  /** Turns per realtime session (absent in older results: 1, a fresh session per turn). */
  readonly sessionTurns?: number | undefined;
}

/**
 * Runs `turns` voice turns for each of `callers` concurrent callers on `url`
 * (the gateway with pid `pid`): a fresh session per turn, or `sessionTurns`
 * turns per session (a call; see load/realtime-latency.ts).
 */
export async function voiceTurns(url: string, pid: number, callers: number, turns: number, sessionTurns = 1): Promise<VoiceRow> {
  let before = cpuTree(pid);
  let faultsBefore = minorFaultsTree(pid);
  const args = ["--url", url, "--turns", String(turns), "--concurrency", String(callers), "--session-turns", String(sessionTurns), "--json"];
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/realtime-latency.ts"), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  pinOthers(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    const had = out.includes("READY\n");
    out += d.toString();
    // The utterance itself is synthesized through the gateway first: its CPU is not the turns'.
    if (!had && out.includes("READY\n")) {
      before = cpuTree(pid);
      faultsBefore = minorFaultsTree(pid);
    }
  });
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`realtime-latency exited ${code} without a result:\n${out.slice(-2000)}`);
  const r = JSON.parse(line.slice("RESULT ".length)) as Omit<VoiceRow, "cpuMsPerTurn">;
  const cpu = cpuTree(pid) - before;
  const faults = minorFaultsTree(pid) - faultsBefore;
  return {
    ...r,
    cpuMsPerTurn: r.turns > 0 ? Math.round((cpu / r.turns) * 10) / 10 : undefined,
    minorFaultsPerTurn: r.turns > 0 ? Math.round(faults / r.turns) : undefined,
    sessionTurns,
  };
}
