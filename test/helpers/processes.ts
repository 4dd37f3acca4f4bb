/** Counts this process's child processes from /proc (Linux), for tests that check engines are killed and reaped. */
import { readdirSync, readFileSync } from "node:fs";

/** A child process of this one. */
export interface ChildInfo {
  readonly pid: number;
  /** The executable's name (`comm`, at most 15 characters). */
  readonly name: string;
  /** The `/proc` state letter: `R`, `S`, … and `Z` for a zombie (exited, not reaped). */
  readonly state: string;
}

/** The direct children of this process, zombies included. */
export function childProcesses(): ChildInfo[] {
  const out: ChildInfo[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${process.pid}/task`);
  } catch {
    return out;
  }
  const pids = new Set<number>();
  for (const t of tasks) {
    try {
      for (const p of readFileSync(`/proc/${process.pid}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (p) pids.add(Number(p));
    } catch {
      // the thread ended
    }
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
      out.push({ pid, name, state });
    } catch {
      // exited and reaped meanwhile
    }
  }
  return out;
}

/** Polls `check` every 20 ms until it returns true, or fails after `ms`. */
export async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
