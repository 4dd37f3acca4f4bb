/**
 * `--workers N`: the primary process forks N gateway workers (node:cluster)
 * that serve the same ports. uWebSockets.js listens with SO_REUSEPORT, so
 * each worker binds the HTTP/WebSocket port itself and the kernel spreads
 * connections; grpc-js has no SO_REUSEPORT (its `grpc.so_reuseport` option is
 * the C-core's), so its port is shared the node:cluster way: the primary
 * holds the listen socket and hands connections round-robin to the workers.
 *
 * The first worker starts alone (so a bad setting or a port in use stops
 * start-up once); then the rest are forked. SIGTERM/SIGINT: every worker drains
 * (`gateway.close(graceMs)`) and exits; the primary exits 0 when all exited
 * 0. A worker that dies unexpectedly is replaced, at most 5 times a minute.
 *
 * Engine state: gateway key limits (rpm, tpm, concurrent streams) are shared
 * by the workers when `redis.url` is set (RedisLimitStore) and per worker
 * otherwise (a key may then get up to N times its limits);
 * `limits.maxConcurrentStreams` and the circuit breakers are always per
 * worker. See docs/ARCHITECTURE.md ("All cores").
 */
import cluster, { type Worker } from "node:cluster";
import { createServer } from "node:net";
import { MemoryStreamLog } from "../engine/durable/memory-stream-log.js";
import { logger } from "../observability/logger.js";
import { serveStreamLog } from "./stream-log-ipc.js";
import { relayCollect } from "./collect.js";
import { primaryScrape, PROMETHEUS_CONTENT_TYPE } from "../observability/cluster-metrics.js";
import { startMetricsServer, type MetricsServer } from "../observability/metrics-server.js";
import type { ReloadOutcome } from "../config/reload.js";
import {
  isMessageOf,
  isReady,
  WORKER_HTTP_PORT_ENV,
  type ReadyMessage,
  type ReloadMessage,
  type ReloadReplyMessage,
  type ReloadRequestMessage,
  type ShutdownMessage,
} from "./messages.js";

/** Settings of the primary. */
export interface PrimaryOptions {
  readonly workers: number;
  /** The HTTP host and port (0: a free port, picked here so every worker gets the same). */
  readonly host: string;
  readonly port: number;
  /** How long workers may drain; the primary kills them 10 s after that. */
  readonly graceMs: number;
  /** Whether the HTTP port serves TLS (for the start-up message). */
  readonly tls?: boolean | undefined;
  /** Bounds of the embedded stream log the primary serves to its workers; none when Redis holds it. */
  readonly streams?: { readonly maxBytes: number; readonly maxCount: number } | undefined;
  /** Re-reads and checks the config (SIGHUP and admin reloads are checked here once, then every worker reloads). */
  readonly loadConfig?: (() => unknown) | undefined;
  /** `metrics.port` etc.: the primary then serves every worker's metrics, summed, on that port. */
  readonly metrics?: { readonly host: string; readonly port: number | undefined; readonly key: string | undefined } | undefined;
}

const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * A free port on `host`. uWebSockets.js sets SO_REUSEPORT only on a given
 * port, never on port 0, so `--port 0` is resolved here, before any worker binds.
 */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function waitReady(worker: Worker): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (!isReady(m)) return;
      worker.off("message", onMessage);
      worker.off("exit", onExit);
      resolve(m);
    };
    const onExit = (code: number | null): void => reject(new Error(`worker ${worker.id} exited (${code}) before listening`));
    worker.on("message", onMessage);
    worker.once("exit", onExit);
  });
}

/** Runs the primary: forks the workers, restarts dead ones, and stops them all on SIGTERM/SIGINT. */
export async function runPrimary(opts: PrimaryOptions): Promise<void> {
  let stopping = false;
  let failed = false;
  const restarts: number[] = [];
  if (opts.streams) serveStreamLog(new MemoryStreamLog(opts.streams));
  const env = { [WORKER_HTTP_PORT_ENV]: String(opts.port === 0 ? await freePort(opts.host) : opts.port) };
  // Workers' /metrics scrapes come here and are answered with every worker's metrics summed.
  // The console and /metrics ask every worker for its part through here.
  const scrape = primaryScrape(relayCollect());
  let metricsServer: MetricsServer | undefined;
  if (opts.metrics?.port !== undefined) {
    metricsServer = await startMetricsServer({ host: opts.metrics.host, port: opts.metrics.port, key: opts.metrics.key, contentType: PROMETHEUS_CONTENT_TYPE, scrape });
  }

  const stop = (signal: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    if (code !== 0) failed = true;
    logger.info({ signal, graceMs: opts.graceMs }, "draining: finishing in-flight streams in every worker");
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    const killer = setTimeout(() => {
      failed = true;
      for (const w of workers) w.process.kill("SIGKILL");
    }, opts.graceMs + 10_000);
    killer.unref();
    void Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once("exit", (c) => {
              if (c !== 0) failed = true;
              resolve();
            });
            const m: ShutdownMessage = { type: "spillway:shutdown" };
            if (w.isConnected()) w.send(m);
            else w.process.kill("SIGTERM");
          }),
      ),
    ).then(async () => {
      await metricsServer?.close();
      logger.info("stopped");
      process.exit(failed ? 1 : 0);
    });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));

  // Reload: the primary checks the new config once (for its log and the admin
  // answer), then tells every worker, each of which re-reads it (and counts a
  // refusal in its metrics) and applies it to its new requests.
  const reloadAll = (why: string): ReloadOutcome => {
    let outcome: ReloadOutcome = { ok: true, restartNeeded: [] };
    try {
      opts.loadConfig?.();
    } catch (e) {
      outcome = { ok: false, error: (e as Error).message };
    }
    if (outcome.ok) logger.info({ why }, "reloading the config in every worker");
    else logger.error({ why, error: outcome.error }, "config reload refused: the old config stays in force");
    const m: ReloadMessage = { type: "spillway:reload" };
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(m);
    return outcome;
  };
  process.on("SIGHUP", () => reloadAll("SIGHUP"));
  cluster.on("message", (worker, m: unknown) => {
    if (!isMessageOf<ReloadRequestMessage>(m, "spillway:reload-request")) return;
    const reply: ReloadReplyMessage = { type: "spillway:reload-reply", id: m.id, outcome: reloadAll("admin request") };
    if (worker.isConnected()) worker.send(reply);
  });

  const onExit = (w: Worker, code: number | null, signal: string | null): void => {
    if (stopping) return;
    logger.error({ worker: w.id, code, signal }, "worker died; starting another");
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      logger.error("workers keep dying: stopping");
      stop("restart limit", 1);
      return;
    }
    fork();
  };
  const fork = (): Worker => {
    const w = cluster.fork(env);
    w.once("exit", (code, signal) => onExit(w, code, signal));
    return w;
  };

  let ready: ReadyMessage;
  try {
    ready = await waitReady(cluster.fork(env));
  } catch (e) {
    // The worker printed why (a port in use, a bad setting).
    logger.error({ err: e }, "the first worker failed to start");
    process.exit(1);
  }
  if (stopping) return;
  const first = Object.values(cluster.workers ?? {})[0];
  first?.once("exit", (code, signal) => onExit(first, code, signal));
  const rest = Array.from({ length: opts.workers - 1 }, fork);
  // A worker that fails to start is replaced by onExit.
  await Promise.all(rest.map((w) => waitReady(w).catch(() => undefined)));
  if (stopping) return;
  logger.info(
    { http: ready.http, grpc: ready.grpc, metrics: metricsServer?.port, workers: opts.workers, providers: ready.providers },
    `spillway listening on ${opts.tls ? "https" : "http"}://${opts.host}:${ready.http} (${opts.workers} workers)`,
  );
}
