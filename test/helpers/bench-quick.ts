/**
 * Runs `npm run bench -- --quick --only MODES` into a temporary folder and
 * returns what it printed and the JSON it wrote. The quick bench is split
 * over two test files (streams; CPU and voice) so that each stays well
 * inside the runner's per-file timeout on a loaded 2-core host.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../load/procs.js";

/** The parts of the bench's JSON results the tests read. */
export interface QuickBenchResults {
  fixedRates: Array<{ target: string; door: string; result: { ok: number; started: number }; cpuUsPerStream?: number }>;
  throughput: Array<{ target: string; door: string; chunksPerS: number }>;
  memory: Array<{ door: string; held: number; streams: number; kibPerStream?: number }>;
  voice: Array<{ turns: number; errors: number; firstAudio: { p50?: number } }>;
  cpu?: { rows: Array<{ mode: string; target: string; cpuUs?: number; mockCpuUs?: number; failed: number }> };
}

/** Runs the quick bench for `only` (comma-separated modes); fails the test unless it exits 0 and writes its JSON. */
export async function runQuickBench(only: string): Promise<{ stdout: string; results: QuickBenchResults }> {
  const out = mkdtempSync(join(tmpdir(), "spillway-bench-quick-"));
  const child = spawn("npm", ["run", "bench", "--", "--quick", "--only", only, "--out", out], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  assert.equal(code, 0, `bench exited ${code}\n${stderr}`);
  const json = readdirSync(out).find((f) => f.startsWith("bench-quick-") && f.endsWith(".json"));
  assert.ok(json, "no JSON results written");
  return { stdout, results: JSON.parse(readFileSync(join(out, json), "utf8")) as QuickBenchResults };
}
