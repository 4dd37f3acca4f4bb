import cluster from "node:cluster";
import { Counter, Gauge } from "prom-client";
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "./config/schema.js";
import type { Door } from "./doors/door.js";
import { createGrpcDoor, type GrpcDoor } from "./doors/grpc/grpc-door.js";
import { createHttpDoor, type HttpDoor } from "./doors/http/http-door.js";
import { attachRealtimeDoor, type RealtimeDoor } from "./doors/ws/realtime-door.js";
import { Admission } from "./engine/admission.js";
import { LoadMonitor } from "./engine/load-monitor.js";
import { AdaptiveLimit } from "./engine/adaptive-limit.js";
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
import { knownModelIds } from "./config/known-models.js";
import { restartOnlyChanges, type ReloadOutcome } from "./config/reload.js";
import { perWorkerGauge, workerScrape } from "./observability/cluster-metrics.js";
import { defaultConcurrentStreams, defaultRealtimeSessions, readOpenFileLimit } from "./engine/limits/descriptor-budget.js";
import { ConsoleFeed } from "./observability/console-feed.js";
import { answerCollect } from "./workers/collect.js";
import { startMetricsServer, type MetricsServer } from "./observability/metrics-server.js";
import type { Observability } from "./observability/observability.js";
import { createProviders } from "./providers/index.js";
import type { StreamLog } from "./engine/durable/stream-log.js";
import { createEngineCache } from "./engine/cache/engine-cache.js";
import { MemoryCacheStore } from "./engine/cache/memory-cache-store.js";
import { RedisCacheStore } from "./engine/cache/redis-cache-store.js";
import { createTracing } from "./observability/tracing.js";

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
  /** The port `/metrics` is served on when `metrics.port` puts it on its own (else undefined). */
  readonly metricsPort: number | undefined;
  /**
   * Reloads the config (see `GatewayOptions.loadConfig`): keys, limits,
   * providers, aliases, fallbacks, timeouts and realtime profiles change for
   * new requests; streams in progress finish on the config they started with.
   * An invalid config is refused (the old one stays, logged and counted in
   * `spillway_config_reloads_total{outcome="invalid"}`). Settings only a
   * restart can change are listed in the outcome and logged.
   */
  reload(): ReloadOutcome;
  /**
   * Shuts down: reports not-ready and answers new requests with 503, lets
   * in-flight streams finish for up to `graceMs` (default 0), ends the rest
   * with an in-band error, then closes every connection.
   */
  close(graceMs?: number): Promise<void>;
}

/** The largest stream the response cache records (bytes): a longer one is passed through unrecorded. */
const MAX_CACHE_ENTRY_BYTES = 64 * 1024 * 1024;

/** How long `close()` lets gRPC calls end on their own before cancelling them. */
const GRPC_SHUTDOWN_GRACE_MS = 2_000;

/** What `startGateway` takes besides the config. */
export interface GatewayOptions {
  /** Where request log lines go; a JSON logger on stdout when absent. */
  readonly logger?: Logger;
  /** The stream log to use without Redis (e.g. the primary's, over IPC); an embedded one when absent. */
  readonly streamLog?: StreamLog;
  /** Labels on the process metrics (`{ worker: "2" }` in a `--workers N` worker). */
  readonly processLabels?: Readonly<Record<string, string>>;
  /**
   * Reads the config again for a reload (`SIGHUP`, `POST /admin/reload`):
   * `main.ts` re-reads the file and the environment. Without it a reload is
   * refused.
   */
  readonly loadConfig?: () => Config;
  /**
   * How `POST /admin/reload` reloads: under `--workers N` the worker asks the
   * primary, which tells every worker. Default: this gateway's own `reload()`.
   */
  readonly requestReload?: () => Promise<ReloadOutcome>;
  /** How long a realtime session holds the slot reserved for its first response (ms; default 1000, `SETUP_RESERVATION_MS`). For tests. */
  readonly realtimeSetupReservationMs?: number | undefined;
}

/**
 * Starts the gateway on `config`: builds the providers and the engine, and
 * opens the doors. Ports of 0 bind free ports (see `httpPort`).
 */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const metrics = createMetrics({ knownModels: knownModelIds(config), maxModelLabels: config.metrics.maxModelLabels, processLabels: options.processLabels });
  const consoleFeed = new ConsoleFeed(200, {
    providers: async () => {
      const models = await engine.listModels();
      return engine.router.providers.map((p) => {
        const own = models.filter((m) => m.id.startsWith(`${p.name}/`));
        const unavailable = own.filter((m) => !m.available).map((m) => ({ model: m.id, reason: m.unavailableReason }));
        const state = engine.isCircuitOpen(p.name) ? "circuit_open" : own.length > 0 && unavailable.length === own.length ? "unavailable" : "ok";
        return { name: p.name, state, unavailable };
      });
    },
    keys: () =>
      admission.keySettings.map((k) => ({
        name: k.name,
        rpm: k.rpm ?? null,
        tpm: k.tpm ?? null,
        maxConcurrentStreams: k.maxConcurrentStreams ?? null,
        openStreams: admission.openStreamsOf(k.name),
      })),
  });
  const tracing = config.tracing.endpoint ? createTracing({ ...config.tracing, endpoint: config.tracing.endpoint }) : undefined;
  const obs: Observability = { metrics, logger: options.logger ?? createLogger(), console: consoleFeed, tracing };
  if (cluster.isWorker) answerCollect("console", () => consoleFeed.snapshot());
  // Under --workers N a scrape answers for every worker (the primary sums them).
  if (cluster.isWorker) metrics.scrape = workerScrape(metrics.registry);
  // Built when the cache is on for everyone or for some key (`auth.keys[].cache`); per request the header decides.
  const cacheStore = !config.cache.enabled && !config.auth.keys.some((k) => k.cache)
    ? undefined
    : config.redis
      ? new RedisCacheStore({
          url: config.redis.url,
          keyPrefix: config.redis.keyPrefix,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          maxEntryBytes: Math.min(config.cache.maxBytes, MAX_CACHE_ENTRY_BYTES),
          onError: (e) => obs.logger.warn({ err: (e as Error).message }, "response cache (Redis) failed"),
        })
      : new MemoryCacheStore(config.cache.maxBytes);
  if (cacheStore instanceof MemoryCacheStore) metrics.trackCacheBytes(() => cacheStore.bytes);
  const cache = cacheStore
    ? createEngineCache({
        store: cacheStore,
        ttlSeconds: config.cache.ttlSeconds,
        maxEntryBytes: Math.min(config.cache.maxBytes, MAX_CACHE_ENTRY_BYTES),
        onStored: (bytes) => {
          metrics.cacheStores.inc();
          metrics.cacheStoredBytes.inc(bytes);
        },
      })
    : undefined;
  const shutdown = new AbortController();
  // Every open stream listens to the shutdown signal: thousands is normal.
  setMaxListeners(0, shutdown.signal);
  let current = config;
  const router = createRouter(createProviders(config), config.aliases);
  const load = config.limits.maxEventLoopUtilization === undefined ? undefined : new LoadMonitor(config.limits.maxEventLoopUtilization);
  const ac = config.limits.adaptiveConcurrency;
  const concurrency = ac.enabled ? new AdaptiveLimit({ targetDelayMs: ac.targetDelayMs, minLimit: ac.minLimit, maxLimit: ac.maxLimit, queueMs: ac.queueMs, warmupMs: ac.warmupMs, signal: ac.signal }) : undefined;
  // Per-process state: one series per worker under --workers N (cluster-metrics.ts), never summed.
  if (concurrency) {
    perWorkerGauge({
      name: "spillway_concurrency_limit",
      help: "The adaptive concurrency limit of this process (-1 while unlimited: the event loop keeps up).",
      registry: metrics.registry,
      labels: options.processLabels,
      value: () => (concurrency.limit === Infinity ? -1 : concurrency.limit),
    });
    new Gauge({ name: "spillway_concurrency_in_use", help: "Adaptive concurrency slots held (streams, early tickets, log followers).", registers: [metrics.registry], collect() { this.set(concurrency.inflight); } });
  }
  // Realtime sessions hold sockets the stream cap does not count: bounded per process from its open-file limit.
  const nofile = readOpenFileLimit().soft;
  const defaultSessions = defaultRealtimeSessions(nofile);
  // HTTP and gRPC streams hold a client and an upstream socket each: by default the other half of the descriptors.
  const defaultStreams = defaultConcurrentStreams(nofile);
  perWorkerGauge({
    name: "spillway_realtime_session_limit",
    help: "Realtime sessions this process admits at once (limits.maxRealtimeSessions, or derived from its open-file limit).",
    registry: metrics.registry,
    labels: options.processLabels,
    value: () => admission.sessionLimit,
  });
  perWorkerGauge({
    name: "spillway_stream_limit",
    help: "HTTP and gRPC streams this process admits at once (limits.maxConcurrentStreams, or derived from its open-file limit).",
    registry: metrics.registry,
    labels: options.processLabels,
    value: () => admission.streamLimit,
  });
  const refusals = new Counter({ name: "spillway_overload_refusals_total", help: "Requests, calls and upgrades refused for the process's load, by cause (stream_cap, session_cap, event_loop, adaptive_limit).", labelNames: ["cause"], registers: [metrics.registry] });
  const admission = new Admission(config.auth.keys, {
    maxConcurrentStreams: config.limits.maxConcurrentStreams ?? defaultStreams,
    maxRealtimeSessions: config.limits.maxRealtimeSessions ?? defaultSessions,
    onRefusal: (cause) => refusals.inc({ cause }),
    overloaded: load ? () => load.busy() : undefined,
    concurrency,
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
    onFallback: (from, to) => metrics.fallbacks.inc({ from: metrics.modelLabel(from.id), to: metrics.modelLabel(to.id) }),
    onAttempt: tracing ? (info) => tracing.onAttempt(info) : undefined,
    cache,
    cacheByDefault: cache
      ? (p) => (p && p.index >= 0 ? current.auth.keys.find((k) => k.name === p.name)?.cache : undefined) ?? current.cache.enabled
      : undefined,
    onStreamEnd: (s) => {
      if (s.outcome !== "ok" && s.outcome.code !== Code.Canceled) {
        metrics.upstreamErrors.inc({ provider: s.route.provider.name, code: Code[s.outcome.code] });
      }
    },
  });
  const reload = (): ReloadOutcome => {
    let next: Config;
    let router: ReturnType<typeof createRouter>;
    try {
      if (!options.loadConfig) throw new Error("this gateway was started without a config file to reload");
      next = options.loadConfig();
      // Providers are built here too: one can refuse its settings (a Vertex credentials file that cannot be read).
      router = createRouter(createProviders(next), next.aliases);
    } catch (e) {
      const error = (e as Error).message;
      metrics.configReloads.inc({ outcome: "invalid" });
      obs.logger.error({ error }, "config reload refused: the old config stays in force");
      return { ok: false, error };
    }
    const restartNeeded = restartOnlyChanges(current, next);
    engine.reconfigure({
      router,
      timeoutMs: next.limits.timeoutMs,
      idleTimeoutMs: next.limits.idleTimeoutMs,
      maxStreamMs: next.limits.maxStreamMs,
      routing: next.routing,
    });
    admission.reconfigure(next.auth.keys, next.limits.maxConcurrentStreams ?? defaultStreams, next.limits.maxRealtimeSessions ?? defaultSessions);
    realtime.reconfigure(next.realtime, next.providers);
    // Restart-only settings keep their running values.
    current = { ...next, http: current.http, grpc: current.grpc, redis: current.redis, metrics: { ...next.metrics, port: current.metrics.port, host: current.metrics.host } };
    metrics.configReloads.inc({ outcome: "ok" });
    obs.logger.info({ providers: engine.router.providers.map((p) => p.name), keys: next.auth.keys.length, restartNeeded }, "config reloaded");
    return { ok: true, restartNeeded };
  };
  const http = createHttpDoor({
    engine,
    get config() {
      return current;
    },
    obs,
    reload: options.requestReload ?? (() => Promise.resolve(reload())),
  });
  // The realtime door shares the HTTP port; it is a Door of its own (drain: 503 on the upgrade).
  const realtime = attachRealtimeDoor(http.app, { engine, settings: config.realtime, providers: config.providers, obs, setupReservationMs: options.realtimeSetupReservationMs });
  const httpPort = await http.listen(config.http.host, config.http.port);
  metrics.trackActive("http", () => http.active);
  metrics.trackActive("ws", () => realtime.active);
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
  const doors: Door[] = [http, realtime, ...(grpc ? [grpc] : [])];
  consoleFeed.start(() => doors.reduce((n, d) => n + d.active, 0));
  // `metrics.port`: /metrics on a port of its own (the primary serves it under --workers N).
  let metricsServer: MetricsServer | undefined;
  const m = config.metrics;
  if (m.port !== undefined && !cluster.isWorker) {
    metricsServer = await startMetricsServer({ host: m.host ?? config.http.host, port: m.port, key: m.key, contentType: metrics.registry.contentType, scrape: metrics.scrape });
  }
  return {
    metricsPort: metricsServer?.port,
    reload,
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
      concurrency?.stop();
      consoleFeed.stop();
      await metricsServer?.close();
      await admission.close();
      await cacheStore?.close();
      await tracing?.shutdown().catch((e: unknown) => obs.logger.warn({ err: (e as Error).message }, "trace export failed at shutdown"));
    },
  };
}
