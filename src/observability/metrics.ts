import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { CounterSeries, HistogramSeries } from "./bound-series.js";
import { LabelBound } from "./label-bound.js";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * The gateway's Prometheus metrics (prom-client), in a registry of its own
 * so several gateways in one process (tests) do not mix. Names follow the
 * Prometheus conventions: `spillway_…_total` counters, `_seconds` units.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Finished requests by door, route, API shape, model, provider, outcome and status. */
  readonly requests: Counter<"door" | "route" | "shape" | "model" | "provider" | "outcome" | "status">;
  /** Time from request to first chunk. */
  readonly timeToFirstChunk: Histogram<"door" | "route" | "provider">;
  /** Time from request to the end of the stream. */
  readonly streamDuration: Histogram<"door" | "route" | "provider">;
  readonly chunksOut: Counter<"door" | "route">;
  readonly bytesOut: Counter<"door" | "route">;
  /** Streams (HTTP, gRPC) and sessions (WebSocket) open now, read from each door at scrape time. */
  readonly activeStreams: Gauge<"door">;
  /** Registers how a door counts what it has open, for `activeStreams`. */
  trackActive(door: string, count: () => number): void;
  /** Failures reported by upstreams, before or during a stream. */
  readonly upstreamErrors: Counter<"provider" | "code">;
  readonly retries: Counter<"provider">;
  readonly fallbacks: Counter<"from" | "to">;
  readonly tokens: Counter<"direction" | "provider">;
  readonly audioSeconds: Counter<"direction" | "provider">;
  /** Requests the response cache served (`hit`) or went to the provider for and may store (`miss`). */
  readonly cacheRequests: Counter<"result">;
  /** Entries and bytes the response cache stored. */
  readonly cacheStores: Counter;
  readonly cacheStoredBytes: Counter;
  /** Bytes the embedded response cache holds now (read at scrape time; absent with Redis). */
  readonly cacheBytes: Gauge;
  /** Registers how the embedded cache counts its bytes, for `cacheBytes`. */
  trackCacheBytes(bytes: () => number): void;
  /** Config reloads by outcome (`ok`, `invalid`: refused, the old config stays). */
  readonly configReloads: Counter<"outcome">;
  /** The `model` label value for a model id: bounded (see {@link LabelBound}), so clients cannot grow the series. */
  modelLabel(id: string): string;
  /**
   * What a scrape of `/metrics` answers: this registry's text, or under
   * `--workers N` every worker's summed (set by the gateway in a worker).
   */
  scrape: () => Promise<string>;
  /**
   * The series one finished request moves, for its labels (`model` already
   * bounded by {@link Metrics.modelLabel}), bound once per combination and
   * kept (the combinations are as bounded as the series themselves): what
   * `recordRequest` moves instead of naming the labels on each metric.
   */
  requestSeries(door: string, route: string, shape: string, model: string, provider: string, outcome: string, status: string): RequestSeries;
}

/**
 * The series of {@link Metrics} that one finished request moves, bound to
 * its labels (see bound-series.ts): `requests` (every label), the TTFT and
 * duration histograms (door, route, provider), chunks and bytes out (door,
 * route), tokens in and out (provider). Each binds on its first use, so a
 * series no request has moved is not exported (as before).
 */
export class RequestSeries {
  readonly requests: CounterSeries;
  readonly timeToFirstChunk: HistogramSeries;
  readonly streamDuration: HistogramSeries;
  readonly chunksOut: CounterSeries;
  readonly bytesOut: CounterSeries;
  readonly tokensIn: CounterSeries;
  readonly tokensOut: CounterSeries;

  constructor(
    m: Metrics,
    readonly door: string,
    readonly route: string,
    readonly shape: string,
    readonly model: string,
    readonly provider: string,
    readonly outcome: string,
    readonly status: string,
  ) {
    this.requests = new CounterSeries(m.requests, { door, route, shape, model, provider, outcome, status });
    this.timeToFirstChunk = new HistogramSeries(m.timeToFirstChunk, { door, route, provider });
    this.streamDuration = new HistogramSeries(m.streamDuration, { door, route, provider });
    this.chunksOut = new CounterSeries(m.chunksOut, { door, route });
    this.bytesOut = new CounterSeries(m.bytesOut, { door, route });
    this.tokensIn = new CounterSeries(m.tokens, { direction: "in", provider });
    this.tokensOut = new CounterSeries(m.tokens, { direction: "out", provider });
  }
}

/** Settings of {@link createMetrics}. */
export interface MetricsOptions {
  /** Model ids that always keep their own `model` label (the configured ones). */
  readonly knownModels?: Iterable<string>;
  /** Further distinct model ids given their own label, as first seen; the rest are `other`. Default 100. */
  readonly maxModelLabels?: number;
  /**
   * Labels on the process metrics (CPU, memory, event loop) — `{ worker: "2" }`
   * in a `--workers N` worker, so those stay per worker when the primary sums
   * every worker's metrics.
   */
  readonly processLabels?: Readonly<Record<string, string>> | undefined;
}

/** Creates the metrics, with the process metrics (CPU, memory, event loop) in the same registry. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "spillway_", ...(options.processLabels ? { labels: { ...options.processLabels } } : {}) });
  const registers = [registry];
  const activeSources = new Map<string, () => number>();
  let cacheBytes: (() => number) | undefined;
  const models = new LabelBound(options.knownModels ?? [], options.maxModelLabels ?? 100);
  const series = new Map<string, RequestSeries>();
  // Requests mostly repeat the last combination: compared field by field, no key string made.
  let last: RequestSeries | undefined;
  const metrics: Metrics = {
    modelLabel: (id) => models.label(id),
    requestSeries(door, route, shape, model, provider, outcome, status) {
      const l = last;
      if (l !== undefined && l.door === door && l.route === route && l.shape === shape && l.model === model && l.provider === provider && l.outcome === outcome && l.status === status) return l;
      const key = door + "\u0001" + route + "\u0001" + shape + "\u0001" + model + "\u0001" + provider + "\u0001" + outcome + "\u0001" + status;
      let s = series.get(key);
      if (!s) {
        s = new RequestSeries(metrics, door, route, shape, model, provider, outcome, status);
        series.set(key, s);
      }
      last = s;
      return s;
    },
    scrape: () => registry.metrics(),
    trackActive: (door, count) => activeSources.set(door, count),
    trackCacheBytes: (bytes) => (cacheBytes = bytes),
    cacheBytes: new Gauge({
      name: "spillway_cache_bytes",
      help: "Bytes the embedded response cache holds now.",
      registers,
      collect() {
        if (cacheBytes) this.set(cacheBytes());
      },
    }),
    registry,
    requests: new Counter({
      name: "spillway_requests_total",
      help: "Finished requests by door, route, API shape, model, provider, outcome and status.",
      labelNames: ["door", "route", "shape", "model", "provider", "outcome", "status"],
      registers,
    }),
    timeToFirstChunk: new Histogram({
      name: "spillway_time_to_first_chunk_seconds",
      help: "Time from the request to the first chunk of its stream.",
      labelNames: ["door", "route", "provider"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    streamDuration: new Histogram({
      name: "spillway_stream_duration_seconds",
      help: "Time from the request to the end of its stream.",
      labelNames: ["door", "route", "provider"],
      buckets: DURATION_BUCKETS,
      registers,
    }),
    chunksOut: new Counter({ name: "spillway_chunks_out_total", help: "Chunks sent to clients.", labelNames: ["door", "route"], registers }),
    bytesOut: new Counter({ name: "spillway_bytes_out_total", help: "Body bytes sent to clients.", labelNames: ["door", "route"], registers }),
    activeStreams: new Gauge({
      name: "spillway_active_streams",
      help: "Requests/streams (HTTP, gRPC) and sessions (WebSocket) open now, per door.",
      labelNames: ["door"],
      registers,
      collect() {
        for (const [door, count] of activeSources) this.set({ door }, count());
      },
    }),
    upstreamErrors: new Counter({
      name: "spillway_upstream_errors_total",
      help: "Errors reported by upstream providers, by provider and code.",
      labelNames: ["provider", "code"],
      registers,
    }),
    retries: new Counter({ name: "spillway_retries_total", help: "Retries of a provider before the first chunk.", labelNames: ["provider"], registers }),
    fallbacks: new Counter({ name: "spillway_fallbacks_total", help: "Fallbacks from one model to another.", labelNames: ["from", "to"], registers }),
    tokens: new Counter({ name: "spillway_tokens_total", help: "Tokens in (prompt) and out (completion).", labelNames: ["direction", "provider"], registers }),
    cacheRequests: new Counter({ name: "spillway_cache_requests_total", help: "Requests through the response cache: hit (replayed) or miss (sent to the provider).", labelNames: ["result"], registers }),
    cacheStores: new Counter({ name: "spillway_cache_stores_total", help: "Complete streams the response cache stored.", registers }),
    cacheStoredBytes: new Counter({ name: "spillway_cache_stored_bytes_total", help: "Bytes of the entries the response cache stored.", registers }),
    configReloads: new Counter({ name: "spillway_config_reloads_total", help: "Config reloads by outcome (invalid: refused, the old config stays).", labelNames: ["outcome"], registers }),
    audioSeconds: new Counter({ name: "spillway_audio_seconds_total", help: "Seconds of audio in (transcribed) and out (synthesized).", labelNames: ["direction", "provider"], registers }),
  };
  return metrics;
}
