/** Starts the real gateway process (`src/main.ts`) with a config file, for tests of `--workers N`, signals and ports. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running gateway process and the ports it reported. */
export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly http: number;
  readonly grpc: number;
  /** The metrics port, when `metrics.port` was set. */
  readonly metrics: number | undefined;
  /** The config file, which a test may rewrite (reload). */
  readonly configPath: string;
  /** Everything the process printed so far. */
  output(): string;
  readonly exit: Promise<number | null>;
}

/**
 * Runs `node --import tsx src/main.ts --config <file> --workers <n>` with
 * `yaml` as the config and resolves once it printed `spillway listening`.
 * `wrap` runs it through another command first (e.g. `["prlimit", "--nofile=300:4096", "--"]`,
 * which execs node in the same process).
 */
export async function startGatewayProcess(yaml: string, workers: number, wrap: readonly string[] = []): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-process-"));
  const configPath = join(dir, "c.yaml");
  writeFileSync(configPath, yaml);
  const argv = [process.execPath, "--import", "tsx", "src/main.ts", "--config", configPath, "--workers", String(workers)];
  const all = [...wrap, ...argv];
  const child = spawn(all[0]!, all.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LOG_LEVEL: "info" },
  });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  let out = "";
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const ports = await new Promise<{ http: number; grpc: number; metrics?: number }>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes("spillway listening"));
      if (line) resolve(JSON.parse(line) as { http: number; grpc: number; metrics?: number });
    });
    child.on("exit", () => reject(new Error(`gateway exited early: ${out}`)));
  });
  return { child, http: ports.http, grpc: ports.grpc, metrics: ports.metrics, configPath, output: () => out, exit };
}
