import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config/load.js";
import { startGateway } from "./gateway.js";
import { logger } from "./observability/logger.js";
import { runPrimary } from "./workers/primary.js";
import { isWorker, requestReloadFromPrimary, startWorker, workerEnv } from "./workers/worker.js";
import { IpcStreamLog } from "./workers/stream-log-ipc.js";

const USAGE = `Usage: spillway [--config FILE] [--port N] [--grpc-port N] [--host ADDR] [--workers N]

Starts the Spillway gateway. With no config it serves the local engines on
port 8080 (HTTP + WebSocket) and 50051 (gRPC). --workers N runs N gateway
processes sharing the ports (default: the number of cores; 1 runs in this
process). SIGHUP re-reads the config (every worker); SIGTERM drains and stops. Environment: PORT, GRPC_PORT,
HOST, SPILLWAY_CONFIG, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
ANTHROPIC_BASE_URL, SPILLWAY_LOCAL_TOKEN_DELAY_MS, LOG_LEVEL.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      port: { type: "string" },
      "grpc-port": { type: "string" },
      host: { type: "string" },
      workers: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.warn(USAGE);
    return;
  }
  const env = { ...process.env };
  if (values.port) env["PORT"] = values.port;
  if (values["grpc-port"]) env["GRPC_PORT"] = values["grpc-port"];
  if (values.host) env["HOST"] = values.host;
  Object.assign(env, workerEnv());
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new ConfigError(`--workers must be a whole number of at least 1, got '${values.workers}'`);
  // Validated in the primary too, so a bad config stops start-up once, with its message.
  const configPath = values.config ?? env["SPILLWAY_CONFIG"];
  const config = loadConfig(configPath, env);
  const reread = (): ReturnType<typeof loadConfig> => loadConfig(configPath, env);
  if (workers > 1 && !isWorker()) {
    await runPrimary({
      workers,
      host: config.http.host,
      port: config.http.port,
      graceMs: config.shutdown.graceMs,
      tls: config.http.tls !== undefined,
      // Without Redis, the primary holds the stream log every worker shares.
      streams: config.redis ? undefined : { maxBytes: config.streams.maxBytes, maxCount: config.streams.maxCount },
      metrics: { host: config.metrics.host ?? config.http.host, port: config.metrics.port, key: config.metrics.key },
      loadConfig: reread,
    });
    return;
  }
  const lifecycle = isWorker() ? startWorker(config.shutdown.graceMs) : undefined;
  const gateway = await startGateway(
    config,
    isWorker()
      ? {
          processLabels: { worker: String(cluster.worker?.id ?? 0) },
          loadConfig: reread,
          requestReload: requestReloadFromPrimary,
          // Without Redis, every worker shares the primary's stream log.
          ...(config.redis ? {} : { streamLog: new IpcStreamLog() }),
        }
      : { loadConfig: reread },
  );
  if (lifecycle) {
    lifecycle.serve(gateway);
    return;
  }
  logger.info(
    { http: gateway.httpPort, grpc: gateway.grpcPort, providers: gateway.engine.router.providers.map((p) => p.name) },
    `spillway listening on ${config.http.tls ? "https" : "http"}://${config.http.host}:${gateway.httpPort}`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdown.graceMs }, "draining: finishing in-flight streams");
    void gateway.close(config.shutdown.graceMs).then(() => {
      logger.info("stopped");
      process.exit(0);
    });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => gateway.reload());
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(`spillway: ${e.message}`);
  else console.error("spillway: failed to start:", e);
  process.exit(1);
});
