/**
 * The processes of a benchmark run: the mock upstream, the gateway (Spillway
 * or Portkey), and one load generator per job, all on loopback. Each is
 * stopped by the run; a process that does not say it is ready in time fails
 * the run instead of hanging it.
 */
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Job, JobResult, LoadgenMessage } from "./loadgen.js";
import { sleep } from "./util.js";

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Node flags that run a TypeScript entry point. */
export const TSX = ["--import", "tsx"];

/** A child process the run owns. */
export interface Proc {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function own(child: ChildProcess): Proc {
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null) r();
    else child.once("exit", () => r());
  });
  return {
    child,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Waits for a stdout line that `match` accepts (and returns what it returns). */
function waitForLine<T>(child: ChildProcess, match: (line: string) => T | undefined, what: string, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after ${ms} ms\n${buf}${err}`)), ms);
    child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = match(line);
        if (m !== undefined) {
          clearTimeout(timer);
          resolve(m);
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready\n${buf}${err}`));
    });
  });
}

/** CPU sets for `--pin`: the gateway (and a compared gateway) on one, the mock and load generators on another. */
export interface Pinning {
  readonly gateway: string;
  readonly others: string;
}

let pinning: Pinning | undefined;

/** Pins every process started from now on (`taskset` CPU lists, e.g. `0` and `1`); undefined: no pinning. */
export function setPinning(p: Pinning | undefined): void {
  pinning = p;
}

/** Moves `child` (all its threads; processes it forks later inherit) onto `cpus`. */
function pin(child: ChildProcess, role: keyof Pinning): void {
  if (!pinning || child.pid === undefined) return;
  const r = spawnSync("taskset", ["-a", "-p", "-c", pinning[role], String(child.pid)], { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`taskset could not pin pid ${child.pid} to CPUs ${pinning[role]}`);
}

/** Open files a load generator may hold: an overload step at thousands of new connections a second must not run out (EMFILE) before the gateway does. */
const LOADGEN_NOFILE = 1_048_576;

/**
 * Raises a load generator's open-file limit (soft and hard) with `prlimit`
 * (util-linux); needs the right to raise a hard limit (root, or
 * CAP_SYS_RESOURCE), else it sets the soft limit to the hard one. Best
 * effort: a failure leaves the inherited limit.
 */
function raiseFdLimit(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const pid = String(child.pid);
  if (spawnSync("prlimit", ["--pid", pid, `--nofile=${LOADGEN_NOFILE}:${LOADGEN_NOFILE}`], { stdio: "ignore" }).status === 0) return;
  spawnSync("sh", ["-c", `prlimit --pid ${pid} --nofile=$(ulimit -Hn):$(ulimit -Hn)`], { stdio: "ignore" });
}

/** Pins a load process (not a gateway) with `--pin`. */
export function pinOthers(child: ChildProcess): void {
  pin(child, "others");
}

/** Environment for children: no real provider keys or base URLs leak into a run. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(OPENAI|ANTHROPIC|SPILLWAY)_/.test(k) || k === "PORT" || k === "GRPC_PORT" || k === "HOST") delete env[k];
  return { ...env, ...extra };
}

/** Starts the mock upstream; resolves with its port. */
export async function startMock(): Promise<Proc & { port: number }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/mock-upstream.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: cleanEnv({}) });
  pin(child, "others");
  const port = await waitForLine(child, (l) => (l.startsWith("{") ? (JSON.parse(l) as { port: number }).port : undefined), "mock upstream");
  return { ...own(child), port };
}

/**
 * Starts the gRPC floor (load/grpc-floor.ts: a bare grpc-js server that
 * streams the mock's answers itself), pinned as a gateway is (`--pin`: CPU
 * 0, where the gateway it stands in for runs); resolves with its port.
 */
export async function startGrpcFloor(): Promise<Proc & { port: number }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/grpc-floor.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: cleanEnv({}) });
  pin(child, "gateway");
  const port = await waitForLine(child, (l) => (l.startsWith("{") ? (JSON.parse(l) as { port: number }).port : undefined), "gRPC floor");
  return { ...own(child), port };
}

/** Settings of a Spillway gateway under test. */
export interface SpillwayOptions {
  readonly mockPort: number;
  readonly workers: number;
  /** Realtime profiles to define: profile id → the mock text model its responses use. Empty: no `realtime` section. */
  readonly realtime: Readonly<Record<string, string>>;
  /** Which Spillway tree to run (default: this one), e.g. a worktree of an older commit for before/after. */
  readonly root?: string;
  /** Extra environment for the gateway (e.g. SPILLWAY_PHASE_TRACE). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra node flags for the gateway (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[] | undefined;
  /** `limits.maxEventLoopUtilization`: shed new streams while the loop is this busy. */
  readonly shed?: number | undefined;
  /**
   * Keep the gateway's adaptive concurrency on (its default). Off unless asked:
   * the benchmark measures what the process can serve, and a refusal would
   * count as a failed stream. Ignored for trees that predate the setting.
   */
  readonly adaptive?: boolean | undefined;
  /** Overrides of `limits.adaptiveConcurrency` (targetDelayMs, minLimit, queueMs) when it is on. */
  readonly adaptiveSettings?: Readonly<Record<string, number | string>> | undefined;
  /** `limits.maxConcurrentStreams`, the hard cap (default here 100 000: the benchmark measures the process, not the cap). */
  readonly maxConcurrentStreams?: number | undefined;
  /** More providers and realtime profiles (e.g. the fake speech providers of the voice benchmark), merged into the config. */
  readonly extra?: { providers?: Record<string, unknown>; profiles?: Record<string, unknown>; vad?: Record<string, unknown> } | undefined;
  /** Run the compiled gateway (`node dist/main.js`, as `npm start` does; see {@link buildSpillway}) instead of `tsx src/main.ts`. */
  readonly built?: boolean | undefined;
}

/**
 * Compiles a Spillway tree as `npm run build` does (tsc → `dist/`, then the
 * static files it reads copied next to it), so the benchmark can run what a
 * deployment runs: under tsx every named closure made per request pays
 * esbuild's `__name` helper (an `Object.defineProperty`, ~0.5–1 µs each),
 * which compiled code does not. Throws when the build fails.
 */
export function buildSpillway(root: string): void {
  const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: root, stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 });
  if (tsc.status !== 0) throw new Error(`building ${root} failed: ${String(tsc.stdout)}${String(tsc.stderr)}`.slice(0, 4000));
  if (existsSync(join(root, "scripts/copy-static.mjs"))) {
    const cp = spawnSync(process.execPath, ["scripts/copy-static.mjs"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    if (cp.status !== 0) throw new Error(`copying ${root}'s static files failed: ${String(cp.stderr)}`);
  }
}

/** Starts Spillway (src/main.ts) on free ports against the mock; resolves with its ports. */
export async function startSpillway(o: SpillwayOptions): Promise<Proc & { httpPort: number; grpcPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-bench-"));
  const config = join(dir, "bench.json");
  const profiles = {
    ...Object.fromEntries(Object.entries(o.realtime).map(([id, text]) => [id, { stt: "local/stt", text: `mock/${text}`, tts: "local/tts" }])),
    ...o.extra?.profiles,
  };
  const realtime = Object.keys(profiles).length > 0 ? { realtime: { profiles, ...(o.extra?.vad ? { vad: o.extra.vad } : {}) } } : {};
  const root = o.root ?? ROOT;
  const knowsAdaptive = existsSync(join(root, "src/config/schema.ts")) && readFileSync(join(root, "src/config/schema.ts"), "utf8").includes("adaptiveConcurrency");
  const adaptive = knowsAdaptive ? { adaptiveConcurrency: { enabled: o.adaptive === true, ...(o.adaptive === true ? o.adaptiveSettings : {}) } } : {};
  writeFileSync(
    config,
    JSON.stringify({
      http: { host: "127.0.0.1", port: 0 },
      grpc: { host: "127.0.0.1", port: 0 },
      limits: { maxConcurrentStreams: o.maxConcurrentStreams ?? 100_000, idleTimeoutMs: 120_000, ...adaptive, ...(o.shed !== undefined ? { maxEventLoopUtilization: o.shed } : {}) },
      routing: { maxAttempts: 1 },
      shutdown: { graceMs: 0 },
      providers: { mock: { type: "openai", baseUrl: `http://127.0.0.1:${o.mockPort}/v1`, models: ["m"] }, ...o.extra?.providers },
      ...realtime,
    }),
  );
  const entry = o.built ? [join(root, "dist/main.js")] : [...TSX, join(root, "src/main.ts")];
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), ...entry, "--config", config, "--workers", String(o.workers)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: cleanEnv({ LOG_LEVEL: "info", ...o.env }),
  });
  pin(child, "gateway");
  const ports = await waitForLine(
    child,
    (l) => {
      if (!l.includes("listening")) return undefined;
      const j = JSON.parse(l) as { http: number; grpc: number };
      return { httpPort: j.http, grpcPort: j.grpc };
    },
    "spillway",
  );
  return { ...own(child), ...ports };
}

/** Where `--compare portkey` installs Portkey's gateway (gitignored). */
export const PORTKEY_CACHE = join(ROOT, "load/.cache/portkey");
/** The Portkey version compared against. */
export const PORTKEY_VERSION = "1.15.2";

/** Installs `@portkey-ai/gateway` into the cache folder unless it is there; returns its entry file. */
export function ensurePortkey(): string {
  const entry = join(PORTKEY_CACHE, "node_modules/@portkey-ai/gateway/build/start-server.js");
  if (existsSync(entry)) return entry;
  mkdirSync(PORTKEY_CACHE, { recursive: true });
  console.error(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${PORTKEY_CACHE} …`);
  const r = spawnSync("npm", ["install", "--prefix", PORTKEY_CACHE, "--no-audit", "--no-fund", "--ignore-scripts", "--no-save", `@portkey-ai/gateway@${PORTKEY_VERSION}`], {
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 300_000,
  });
  if (r.status !== 0 || !existsSync(entry)) throw new Error("could not install @portkey-ai/gateway (npm install failed)");
  return entry;
}

/** The installed Portkey version (from its package.json). */
export function portkeyVersion(): string {
  const pkg = join(PORTKEY_CACHE, "node_modules/@portkey-ai/gateway/package.json");
  return existsSync(pkg) ? (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version : "?";
}

/** Starts Portkey's gateway (`--port=N --headless`) on `port`; `output()` is the tail of what it printed. */
export async function startPortkey(port: number): Promise<Proc & { output(): string }> {
  const entry = ensurePortkey();
  const child = spawn(process.execPath, [entry, `--port=${port}`, "--headless"], { cwd: PORTKEY_CACHE, stdio: ["ignore", "pipe", "pipe"], env: cleanEnv({ NODE_ENV: "production" }) });
  pin(child, "gateway");
  let out = "";
  const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-20_000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  await waitForLine(child, (l) => (l.includes("Ready for connections") ? true : undefined), "portkey");
  return { ...own(child), output: () => out };
}

/** Sums `read(p)` over `pid` and its live descendants (cluster workers, engine children), from /proc; a process gone meanwhile counts 0. */
function sumTree(pid: number, read: (p: number) => number): number {
  let total = 0;
  const walk = (p: number): void => {
    try {
      total += read(p);
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/)) if (t) walk(Number(t));
    } catch {
      // The process is gone.
    }
  };
  walk(pid);
  return total;
}

/** The fields of /proc/<p>/stat after the command name (which may hold spaces): state is [0]. */
function statFields(p: number): string[] {
  const stat = readFileSync(`/proc/${p}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Resident memory (bytes) of `pid` and all its descendants (cluster workers). */
export function rssTree(pid: number): number {
  return sumTree(pid, (p) => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  });
}

/** CPU time (user + system, ms) used so far by `pid`, its live descendants and the children they reaped, from /proc. */
export function cpuTree(pid: number): number {
  // utime, stime, then cutime and cstime (children that exited, e.g. the speech engines' processes).
  const ticks = sumTree(pid, (p) => {
    const f = statFields(p);
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  });
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Minor page faults so far of `pid` and its live descendants (and the children they reaped), from /proc: fresh pages the process touched. */
export function minorFaultsTree(pid: number): number {
  // minflt and cminflt.
  return sumTree(pid, (p) => {
    const f = statFields(p);
    return Number(f[7]) + Number(f[8]);
  });
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

/** Runs one job in a fresh load generator process. */
export function runJob(job: Job): Promise<JobResult> {
  const child = fork(join(ROOT, "load/loadgen.ts"), [], { execArgv: TSX, cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  pin(child, "others");
  raiseFdLimit(child);
  return new Promise((resolve, reject) => {
    child.once("message", (m: LoadgenMessage) => {
      if (m.type === "result") resolve(m.result);
      else reject(new Error(m.type === "failed" ? m.error : "unexpected message"));
    });
    child.once("exit", (code) => reject(new Error(`load generator exited (${code})`)));
    child.send(job);
  });
}

/** A load generator holding streams open; `release()` closes them and ends the process. */
export interface Holding {
  readonly held: number;
  readonly failed: number;
  readonly errorSamples: readonly string[];
  release(): Promise<void>;
}

/** Opens `job.count` streams in a fresh load generator and resolves once they are all open. */
export function holdStreams(job: Job): Promise<Holding> {
  const child = fork(join(ROOT, "load/loadgen.ts"), [], { execArgv: TSX, cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  pin(child, "others");
  raiseFdLimit(child);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolve, reject) => {
    child.once("message", (m: LoadgenMessage) => {
      if (m.type !== "held") {
        reject(new Error(m.type === "failed" ? m.error : "unexpected message"));
        return;
      }
      resolve({
        held: m.held,
        failed: m.failed,
        errorSamples: m.errorSamples,
        async release() {
          child.send("release");
          await Promise.race([exited, sleep(10_000)]);
          if (child.exitCode === null) child.kill("SIGKILL");
        },
      });
    });
    void exited.then(() => reject(new Error("load generator exited before holding its streams")));
    child.send(job);
  });
}
