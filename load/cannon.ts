/**
 * autocannon (devDependency, 8.0.0) in its own process, for the CPU-per-
 * request benchmark's HTTP turns: a closed loop of `connections` keep-alive
 * connections POSTing one chat completion each, back to back, for `seconds`.
 * autocannon's HTTP client is lean, so the load side takes little of the
 * shared cores, and every complete body is checked (a streamed one must end
 * with `[DONE]` after all its content chunks, a whole one must carry
 * `usage`): a request counts only when its answer was all there.
 *
 * The same process also runs the gRPC and realtime turns (closed loop with
 * load/loadgen.ts's clients), one turn after another: see
 * {@link startTurnWorker}.
 */
import { fork } from "node:child_process";
import { join } from "node:path";
import { clientFor, runClosed, type Job } from "./loadgen.js";
import { pinOthers, ROOT, TSX } from "./procs.js";
import { assertLoopback, isMain, sleep } from "./util.js";

/** One autocannon run. */
export interface CannonJob {
  /** `http://127.0.0.1:P` */
  readonly origin: string;
  readonly model: string;
  readonly stream: boolean;
  /** Content chunks a streamed answer must have. */
  readonly expectChunks: number;
  readonly connections: number;
  readonly seconds: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What it counted. */
export interface CannonResult {
  /** 2xx answers whose body checked out. */
  readonly ok: number;
  /** Non-2xx answers, bodies that did not check out, socket errors and timeouts. */
  readonly failed: number;
  readonly requestsPerS: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

/** Counts `"content":"x` in a body (the mock's content is all `x`). */
function contentChunks(body: string): number {
  let n = 0;
  for (let i = body.indexOf('"content":"x'); i >= 0; i = body.indexOf('"content":"x', i + 12)) n++;
  return n;
}

/** Whether a body is a complete answer for `job`. */
export function completeBody(job: Pick<CannonJob, "stream" | "expectChunks">, body: string): boolean {
  if (!job.stream) return body.includes('"usage"') && body.includes('"finish_reason":"stop"');
  return body.includes("data: [DONE]") && contentChunks(body) >= job.expectChunks;
}

async function run(job: CannonJob): Promise<CannonResult> {
  assertLoopback(new URL(job.origin).hostname);
  const { default: autocannon } = await import("autocannon");
  const body = JSON.stringify({
    model: job.model,
    messages: [{ role: "user", content: "benchmark" }],
    stream: job.stream,
    ...(job.stream ? { stream_options: { include_usage: true } } : {}),
  });
  const r = await autocannon({
    url: `${job.origin}/v1/chat/completions`,
    method: "POST",
    connections: job.connections,
    duration: job.seconds,
    timeout: 10,
    body,
    headers: { "content-type": "application/json", ...job.headers },
    verifyBody: (b) => completeBody(job, b),
  });
  const ok = Math.max(0, r["2xx"] - r.mismatches);
  return {
    ok,
    failed: r.non2xx + r.mismatches + r.errors + r.timeouts,
    requestsPerS: Math.round(ok / Math.max(r.duration, 0.001)),
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
  };
}

/** A job for the turn worker: an autocannon run, or a closed-loop load generator job (gRPC, realtime). */
export type TurnJob = { readonly kind: "cannon"; readonly job: CannonJob } | { readonly kind: "closed"; readonly job: Job };

/** What a turn measured: completed requests and failures (the load side's own view). */
export interface TurnResult {
  readonly ok: number;
  /** Failures and refusals. */
  readonly failed: number;
  /** Of `failed`, refusals (gateway over capacity; closed-loop turns only). */
  readonly refused: number;
  readonly requestsPerS: number;
  readonly errorSamples: readonly string[];
}

/** A process that runs turns one after another, so a turn does not pay for a process start. */
export interface TurnWorker {
  run(job: TurnJob): Promise<TurnResult>;
  stop(): Promise<void>;
}

type Reply = { type: "result"; result: TurnResult } | { type: "failed"; error: string };

/**
 * Starts a turn worker (pinned with the load generators under `--pin`).
 * One turn at a time; a turn that fails rejects, and a worker that exits
 * rejects the turn in progress.
 */
export function startTurnWorker(): TurnWorker {
  const child = fork(join(ROOT, "load/cannon.ts"), [], { execArgv: TSX, cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  pinOthers(child);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    run(job) {
      return new Promise((resolve, reject) => {
        const onExit = (code: number | null): void => reject(new Error(`turn worker exited (${code})`));
        child.once("exit", onExit);
        child.once("message", (m: Reply) => {
          child.off("exit", onExit);
          if (m.type === "result") resolve(m.result);
          else reject(new Error(`turn ${job.kind}: ${m.error}`));
        });
        child.send(job);
      });
    },
    async stop() {
      if (child.connected) child.disconnect();
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

async function turn(t: TurnJob): Promise<TurnResult> {
  if (t.kind === "cannon") {
    const r = await run(t.job);
    return { ok: r.ok, failed: r.failed, refused: 0, requestsPerS: r.requestsPerS, errorSamples: [] };
  }
  const client = clientFor(t.job);
  try {
    const r = await runClosed(client, t.job);
    return { ok: r.ok, failed: r.errors + (r.refused ?? 0), refused: r.refused ?? 0, requestsPerS: Math.round(r.ok / Math.max(r.elapsedS, 0.001)), errorSamples: r.errorSamples };
  } finally {
    client.close();
  }
}

if (isMain(import.meta.url)) {
  process.on("message", (t: TurnJob) => {
    turn(t).then(
      (result) => void process.send?.({ type: "result", result } satisfies Reply),
      (e: unknown) => void process.send?.({ type: "failed", error: String(e) } satisfies Reply),
    );
  });
  process.once("disconnect", () => process.exit(0));
  setTimeout(() => process.exit(2), 60 * 60_000).unref();
}
