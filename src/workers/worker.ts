/**
 * The worker side of `--workers N`: reports the gateway's ports to the
 * primary and drains on its request (or on a signal sent to the whole
 * process group, or when the primary is gone), then exits 0.
 */
import cluster from "node:cluster";
import type { Gateway } from "../gateway.js";
import { logger } from "../observability/logger.js";
import type { ReloadOutcome } from "../config/reload.js";
import { isMessageOf, isShutdown, WORKER_HTTP_PORT_ENV, type ReadyMessage, type ReloadMessage, type ReloadReplyMessage, type ReloadRequestMessage } from "./messages.js";

/** Whether this process is a gateway worker started by the primary. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * Settings a worker takes from the primary on top of the command line: the
 * HTTP port (the primary resolves `--port 0` to one free port for all). (The gRPC port needs nothing: node:cluster shares the first
 * worker's listen handle, random port included.)
 */
export function workerEnv(): Record<string, string> {
  const port = process.env[WORKER_HTTP_PORT_ENV];
  return isWorker() && port ? { PORT: port } : {};
}

/** A worker between start and stop. */
export interface WorkerLifecycle {
  /** Call once the gateway listens: tells the primary, and stops it when asked (at once if asked already). */
  serve(gateway: Gateway): void;
}

/**
 * Listens for stop requests from the start (a SIGTERM may come while the
 * gateway is still starting), so a worker always drains and exits 0.
 */
export function startWorker(graceMs: number): WorkerLifecycle {
  let gateway: Gateway | undefined;
  let requested: string | undefined;
  let stopping = false;
  const stop = (why: string): void => {
    requested ??= why;
    if (!gateway || stopping) return;
    stopping = true;
    logger.info({ worker: cluster.worker?.id, why }, "worker draining");
    void gateway.close(graceMs).then(() => process.exit(0));
  };
  process.on("message", (m: unknown) => {
    if (isShutdown(m)) stop("primary");
    else if (isMessageOf<ReloadMessage>(m, "spillway:reload")) gateway?.reload();
  });
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  // A SIGHUP to the whole group reaches the primary too, which tells every worker to reload.
  process.on("SIGHUP", () => undefined);
  // The primary died: do not serve on as an orphan.
  process.once("disconnect", () => stop("primary gone"));
  return {
    serve(g) {
      gateway = g;
      const ready: ReadyMessage = {
        type: "spillway:ready",
        http: g.httpPort,
        grpc: g.grpcPort,
        providers: g.engine.router.providers.map((p) => p.name),
      };
      if (process.connected) process.send?.(ready);
      if (requested) stop(requested);
    },
  };
}

let nextReload = 0;

/**
 * In a worker, `POST /admin/reload`: asks the primary, which checks the new
 * config and tells every worker to reload; resolves with the primary's check.
 */
export function requestReloadFromPrimary(): Promise<ReloadOutcome> {
  return new Promise((resolve) => {
    const id = nextReload++;
    const timer = setTimeout(() => {
      process.off("message", onReply);
      resolve({ ok: false, error: "the primary did not answer the reload request" });
    }, 10_000);
    const onReply = (m: unknown): void => {
      if (!isMessageOf<ReloadReplyMessage>(m, "spillway:reload-reply") || m.id !== id) return;
      clearTimeout(timer);
      process.off("message", onReply);
      resolve(m.outcome);
    };
    process.on("message", onReply);
    const req: ReloadRequestMessage = { type: "spillway:reload-request", id };
    process.send?.(req);
  });
}
