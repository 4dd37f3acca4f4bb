/**
 * How many realtime sessions and streams one process can hold open before
 * it runs out of file descriptors, from its open-file limit (RLIMIT_NOFILE). Node 20
 * has no `process.getrlimit`, so the soft limit is read from
 * `/proc/self/limits` (Linux), else from `ulimit -n` in a shell (a child
 * inherits the limit), else {@link FALLBACK_NOFILE} is assumed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The open-file limit assumed when it cannot be read: the common Linux soft default. */
export const FALLBACK_NOFILE = 1024;

/**
 * Descriptors one realtime session may hold: the client socket; for a
 * cascade a recognizer (Deepgram) and a TTS (ElevenLabs) upstream socket,
 * and the turn's model request (an HTTP connection); for a relayed model
 * the upstream socket.
 */
export const FDS_PER_SESSION = 4;

/** Descriptors one HTTP or gRPC stream may hold: the client's socket and the upstream's. */
export const FDS_PER_STREAM = 2;

/** The stream cap's default whatever the open-file limit allows. */
export const MAX_DEFAULT_STREAMS = 10_000;

/** Where the limit was read from. */
export type NofileSource = "proc" | "ulimit" | "fallback";

/** The soft open-file limit and where it came from. */
export interface OpenFileLimit {
  /** The soft limit (Infinity for `unlimited`). */
  readonly soft: number;
  readonly source: NofileSource;
}

/**
 * The soft limit in a `/proc/<pid>/limits` text (`Max open files  <soft>
 * <hard>  files`); undefined when the line is missing or unreadable.
 */
export function parseProcLimits(text: string): number | undefined {
  const m = /^Max open files\s+(\S+)\s+\S+/m.exec(text);
  if (!m) return undefined;
  if (m[1] === "unlimited") return Infinity;
  const n = Number(m[1]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * This process's soft open-file limit: `/proc/self/limits`, else `ulimit -n`
 * (`sh`), else {@link FALLBACK_NOFILE}. Never throws; read once at start.
 */
export function readOpenFileLimit(): OpenFileLimit {
  try {
    const soft = parseProcLimits(readFileSync("/proc/self/limits", "utf8"));
    if (soft !== undefined) return { soft, source: "proc" };
  } catch {
    // Not Linux (or /proc not mounted): ask a shell.
  }
  try {
    const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8", timeout: 2000 });
    const out = r.stdout?.trim();
    if (out === "unlimited") return { soft: Infinity, source: "ulimit" };
    const n = Number(out);
    if (r.status === 0 && Number.isInteger(n) && n > 0) return { soft: n, source: "ulimit" };
  } catch {
    // No shell: assume the common default.
  }
  return { soft: FALLBACK_NOFILE, source: "fallback" };
}

/** The most sessions the default allows whatever the limit (an `unlimited` process still has a kernel-wide one). */
const MAX_DEFAULT_SESSIONS = 100_000;

/**
 * The default of `limits.maxRealtimeSessions` for a soft open-file limit
 * `nofile`: `floor((nofile − reserve) / (2 × FDS_PER_SESSION))`, at least 1,
 * where `reserve = min(256, floor(nofile / 4))` descriptors are kept for the
 * rest of the process (listening sockets, logs, Redis, the upstream pool,
 * child processes' pipes), and half of the remainder goes to sessions — the
 * other half to HTTP and gRPC streams, each a client and an upstream socket.
 * 20,000 → 2,468; 1,024 → 96; 256 → 24.
 */
export function defaultRealtimeSessions(nofile: number): number {
  if (!Number.isFinite(nofile)) return MAX_DEFAULT_SESSIONS;
  return Math.min(MAX_DEFAULT_SESSIONS, Math.max(1, Math.floor(halfBudget(nofile) / FDS_PER_SESSION)));
}

/**
 * The default of `limits.maxConcurrentStreams` for a soft open-file limit
 * `nofile`: the other half of the budget {@link defaultRealtimeSessions}
 * splits, `floor((nofile − reserve) / (2 × FDS_PER_STREAM))`, at least 1 and
 * at most {@link MAX_DEFAULT_STREAMS}. With both caps at their defaults a
 * process's streams and sessions together stay inside its descriptors.
 * 20,000 → 4,936; 4,096 → 960; 1,024 → 192; ≥ 40,256 (or unlimited) → 10,000.
 */
export function defaultConcurrentStreams(nofile: number): number {
  if (!Number.isFinite(nofile)) return MAX_DEFAULT_STREAMS;
  return Math.min(MAX_DEFAULT_STREAMS, Math.max(1, Math.floor(halfBudget(nofile) / FDS_PER_STREAM)));
}

/** Half of what is left of `nofile` after the reserve of `min(256, nofile / 4)`. */
function halfBudget(nofile: number): number {
  const reserve = Math.min(256, Math.floor(nofile / 4));
  return (nofile - reserve) / 2;
}
