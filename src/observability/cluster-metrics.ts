/**
 * One `/metrics` for the whole gateway under `--workers N`: a scrape lands on
 * any worker, which asks the primary over IPC; the primary collects every
 * worker's registry (prom-client's `AggregatorRegistry`: counters and
 * histograms summed, so totals do not jump between workers' values) and
 * answers. Process metrics carry a `worker` label, so event-loop lag and heap
 * stay per worker.
 *
 * Gauges are summed too, which is right only for counts of things open or
 * held (`spillway_active_streams`, `spillway_cache_bytes`: the gateway's
 * total is the workers' sum; {@link SUMMED_GAUGES}). A gauge of a
 * per-process state — a limit, a ratio, event-loop delay or utilization —
 * is made with {@link perWorkerGauge}: it carries the process labels (the
 * `worker` label under `--workers N`), so each worker's value stays its own
 * series (`spillway_concurrency_limit{worker="1"} -1`), never a sum such as
 * -2 for two unlimited workers.
 */
import { AggregatorRegistry, Gauge, type Registry } from "prom-client";
import { Code } from "../engine/code.js";
import { SpillwayError } from "../engine/errors.js";
import { answerCollect, collectAll, type Collected, type CollectFromWorkers } from "../workers/collect.js";

/**
 * The gauges whose workers' values are summed under `--workers N` (counts
 * of open streams and held bytes: the gateway's total). Every other gauge
 * the gateway registers carries the `worker` label
 * (test/early-refusal-workers.test.ts checks each gauge of a real scrape).
 */
export const SUMMED_GAUGES: ReadonlySet<string> = new Set(["spillway_active_streams", "spillway_cache_bytes", "spillway_concurrency_in_use"]);

/** What {@link perWorkerGauge} makes. */
export interface PerWorkerGaugeOptions {
  readonly name: string;
  readonly help: string;
  readonly registry: Registry;
  /** The process labels (`{ worker: "2" }` in a worker; none in a single process). */
  readonly labels: Readonly<Record<string, string>> | undefined;
  /** The value at scrape time. */
  readonly value: () => number;
}

/**
 * A gauge of one process's own state (a limit, a ratio, a delay): labelled
 * with the process labels, so that the primary's aggregation keeps one
 * series per worker instead of summing them. In a single process it has no
 * labels (`name value`).
 */
export function perWorkerGauge(o: PerWorkerGaugeOptions): Gauge {
  const labels = { ...(o.labels ?? {}) };
  return new Gauge({
    name: o.name,
    help: o.help,
    labelNames: Object.keys(labels),
    registers: [o.registry],
    // A worker's series is one value: "max" of one is itself; were the labels missing, the worst case is shown, not a sum.
    aggregator: "max",
    collect() {
      this.set(labels, o.value());
    },
  });
}

/** Prometheus' text content type, as prom-client writes it. */
export const PROMETHEUS_CONTENT_TYPE = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE;

/** The text of the workers' registries (each `registry.getMetricsAsJSON()`), aggregated; rejects when a ready worker did not answer. */
function aggregate({ parts, missing }: Collected): Promise<string> {
  // A partial sum would look like a counter reset to Prometheus: no answer rather than a wrong one.
  if (missing > 0) {
    throw new SpillwayError(Code.Unavailable, `${missing} worker${missing === 1 ? "" : "s"} did not answer the metrics request`, {
      reason: "metrics_unavailable",
      retryAfterMs: 1_000,
    });
  }
  return AggregatorRegistry.aggregate(parts as object[]).metrics();
}

/**
 * In a worker: lets the primary read `registry` (workers/collect.ts), and
 * returns a scrape that resolves with the metrics of every worker that is
 * up, aggregated. A worker still starting is not waited for; the scrape
 * rejects when a running worker does not answer within 3 s.
 */
export function workerScrape(registry: Registry): () => Promise<string> {
  answerCollect(METRICS, () => registry.getMetricsAsJSON());
  return () => collectAll(METRICS, () => registry.getMetricsAsJSON()).then(aggregate);
}

/**
 * In the primary: the same scrape over `collect` (the primary's
 * {@link relayCollect}), for a metrics port the primary serves.
 */
export function primaryScrape(collect: CollectFromWorkers): () => Promise<string> {
  return () => collect(METRICS).then(aggregate);
}

const METRICS = "metrics";
