import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "./config/schema.js";
import type { Door } from "./doors/door.js";
import { createGrpcDoor, type GrpcDoor } from "./doors/grpc/grpc-door.js";
import { createHttpDoor, type HttpDoor } from "./doors/http/http-door.js";
import { attachRealtimeDoor, type RealtimeDoor } from "./doors/ws/realtime-door.js";
import { Admission } from "./engine/admission.js";
import { LoadMonitor } from "./engine/load-monitor.js";
import { RedisLimitStore } from "./engine/limits/redis-limit-store.js";
import { Code } from "./engine/code.js";
import { SpillwayError } from "./engine/errors.js";
import { createRouter } from "./engine/router.js";
import { createStreamEngine, type StreamEngine } from "./engine/stream-engine.js";
import { DurableStreams } from "./engine/durable/durable-streams.js";
import { MemoryStreamLog } from "./engine/durable/memory-stream-log.js";
import { RedisStreamLog } from "./engine/durable/redis-stream-log.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { createMetrics } from "./observability/metrics.js";
import type { Observability } from "./observability/observability.js";
import { createProviders } from "./providers/index.js";
import type { StreamLog } from "./engine/durable/stream-log.js";

/** A running gateway: its doors, the ports they bound, and how to stop it. */
export interface Gateway {
  readonly engine: StreamEngine;
  readonly http: HttpDoor;
  /** The HTTP/WebSocket port actually bound. */
  readonly httpPort: number;
  /** The realtime WebSocket door (`/v1/realtime` on the HTTP port). */
  readonly realtime: RealtimeDoor;
  /** The gRPC door; `undefined` when `grpc.enabled` is false. */
  readonly grpc: GrpcDoor | undefined;
  /** The gRPC port actually bound; `undefined` when the gRPC door is off. */
  readonly grpcPort: number | undefined;
  /** Metrics and logs. */
  readonly obs: Observability;
  /**
   * Shuts down: reports not-ready and answers new requests with 503, lets
   * in-flight streams finish for up to `graceMs` (default 0), ends the rest
   * with an in-band error, then closes every connection.
   */
  close(graceMs?: number): Promise<void>;
}

/** How long `close()` lets gRPC calls end on their own before cancelling them. */
const GRPC_SHUTDOWN_GRACE_MS = 2_000;

/** What `startGateway` takes besides the config. */
export interface GatewayOptions {
  /** Where request log lines go; a JSON logger on stdout when absent. */
  readonly logger?: Logger;
  /** The stream log to use without Redis (e.g. the primary's, over IPC); an embedded one when absent. */
  readonly streamLog?: StreamLog;
}

/**
 * Starts the gateway on `config`: builds the providers and the engine, and
 * opens the doors. Ports of 0 bind free ports (see `httpPort`).
 */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const metrics = createMetrics();
  const obs: Observability = { metrics, logger: options.logger ?? createLogger() };
  const shutdown = new AbortController();
  // Every open stream listens to the shutdown signal: thousands is normal.
  setMaxListeners(0, shutdown.signal);
  const router = createRouter(createProviders(config), config.aliases);
  const load = config.limits.maxEventLoopUtilization === undefined ? undefined : new LoadMonitor(config.limits.maxEventLoopUtilization);
  const admission = new Admission(config.auth.keys, {
    maxConcurrentStreams: config.limits.maxConcurrentStreams,
    overloaded: load ? () => load.busy() : undefined,
    store: config.redis ? new RedisLimitStore({ url: config.redis.url, keyPrefix: config.redis.keyPrefix, commandTimeoutMs: config.redis.commandTimeoutMs }) : undefined,
    failOpen: config.redis?.failOpen,
    leaseTtlMs: config.limits.maxStreamMs + 60_000,
    onStoreError: (e) => obs.logger.warn({ err: (e as Error).message }, "rate-limit store (Redis) failed"),
  });
  const sc = config.streams;
  const streams = new DurableStreams({
    log: config.redis
      ? new RedisStreamLog({ url: config.redis.url, keyPrefix: config.redis.keyPrefix, commandTimeoutMs: config.redis.commandTimeoutMs, maxLifeMs: config.limits.maxStreamMs + sc.retentionMs })
      : (options.streamLog ?? new MemoryStreamLog({ maxBytes: sc.maxBytes, maxCount: sc.maxCount })),
    retentionMs: sc.retentionMs,
    maxStreamMs: config.limits.maxStreamMs,
    maxStreamBytes: sc.maxStreamBytes,
    maxBackgroundPerOwner: sc.maxBackgroundPerKey,
    maxBackground: sc.maxBackground,
    onLogError: (e) => obs.logger.warn({ err: (e as Error).message }, "stream log failed"),
  });
  const engine = createStreamEngine({
    streams,
    router,
    timeoutMs: config.limits.timeoutMs,
    idleTimeoutMs: config.limits.idleTimeoutMs,
    maxStreamMs: config.limits.maxStreamMs,
    routing: config.routing,
    admission,
    shutdownSignal: shutdown.signal,
    onAttemptFailed: (route, err, retrying) => {
      metrics.upstreamErrors.inc({ provider: route.provider.name, code: Code[err.code] });
      if (retrying) metrics.retries.inc({ provider: route.provider.name });
    },
    onFallback: (from, to) => metrics.fallbacks.inc({ from: from.id, to: to.id }),
    onStreamEnd: (s) => {
      if (s.outcome !== "ok" && s.outcome.code !== Code.Canceled) {
        metrics.upstreamErrors.inc({ provider: s.route.provider.name, code: Code[s.outcome.code] });
      }
    },
  });
  const http = createHttpDoor({ engine, config, obs });
  const realtime = attachRealtimeDoor(http.app, { engine, settings: config.realtime, obs });
  // The realtime door shares the HTTP port; as a door it drains and closes with the others.
  const ws: Door = {
    name: "ws",
    get active() {
      return realtime.openSessions;
    },
    drain: () => undefined,
    close: () => {
      realtime.closeAll();
      return Promise.resolve();
    },
  };
  const httpPort = await http.listen(config.http.host, config.http.port);
  metrics.trackActive("http", () => http.active);
  metrics.trackActive("ws", () => ws.active);
  let grpc: GrpcDoor | undefined;
  let grpcPort: number | undefined;
  if (config.grpc.enabled) {
    // Calls are checked against the gateway keys (engine.admission), as HTTP requests are.
    grpc = createGrpcDoor({ engine, maxMessageBytes: config.grpc.maxMessageBytes, obs });
    try {
      grpcPort = await grpc.listen(config.grpc.host, config.grpc.port);
      const door = grpc;
      metrics.trackActive("grpc", () => door.activeCalls);
    } catch (e) {
      await http.close(0);
      await grpc.shutdown(0);
      throw e;
    }
  }
  const doors: Door[] = [http, ws, ...(grpc ? [grpc] : [])];
  return {
    engine,
    http,
    httpPort,
    realtime,
    grpc,
    grpcPort,
    obs,
    async close(graceMs = 0) {
      // 1. Every door refuses new work (503, UNAVAILABLE, a refused upgrade).
      for (const d of doors) d.drain();
      // 2. What is in progress may finish within the grace.
      const until = Date.now() + graceMs;
      while (engine.admission.openStreams > 0 && Date.now() < until) await sleep(25);
      // 3. Every engine stream still open ends with an in-band Unavailable error…
      shutdown.abort(new SpillwayError(Code.Unavailable, "the server is shutting down", { httpStatus: 503, reason: "server_shutting_down" }));
      for (let i = 0; i < 20 && engine.admission.openStreams > 0; i++) await sleep(10);
      // 4. …and each door ends what is left its own way and stops listening.
      await Promise.all(doors.map((d) => d.close(d === grpc ? GRPC_SHUTDOWN_GRACE_MS : 200)));
      load?.stop();
      await streams.close();
      await admission.close();
    },
  };
}
