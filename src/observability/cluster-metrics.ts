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
import cluster from "node:cluster";
import { AggregatorRegistry, Gauge, type Registry } from "prom-client";

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

const REQUEST = "spillway:metrics-request";
const RESPONSE = "spillway:metrics-response";

interface MetricsRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

interface MetricsResponse {
  readonly type: typeof RESPONSE;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

/** Prometheus' text content type, as prom-client writes it. */
export const PROMETHEUS_CONTENT_TYPE = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE;

function isMessage<T extends { type: string }>(m: unknown, type: string): m is T {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;
}

/**
 * In a worker: lets the primary read `registry`, and returns a scrape that
 * resolves with the metrics of every worker, summed (rejects after 5 s
 * without an answer).
 */
export function workerScrape(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one in a worker installs prom-client's answer to the primary's collection requests.
  new AggregatorRegistry();
  let next = 0;
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on("message", (m: unknown) => {
    if (!isMessage<MetricsResponse>(m, RESPONSE)) return;
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.text !== undefined) w.resolve(m.text);
    else w.reject(new Error(m.error ?? "no metrics"));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("the primary did not answer the metrics request"));
      }, 5_000);
      waiting.set(id, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      const req: MetricsRequest = { type: REQUEST, id };
      process.send?.(req);
    });
}

/**
 * In the primary: answers the workers' scrapes with every worker's metrics
 * summed, and returns the same scrape for a metrics port the primary serves.
 */
export function primaryScrape(): () => Promise<string> {
  const aggregator = new AggregatorRegistry();
  const scrape = (): Promise<string> => aggregator.clusterMetrics();
  cluster.on("message", (worker, m: unknown) => {
    if (!isMessage<MetricsRequest>(m, REQUEST)) return;
    scrape().then(
      (text) => worker.isConnected() && worker.send({ type: RESPONSE, id: m.id, text } satisfies MetricsResponse),
      (e: unknown) => worker.isConnected() && worker.send({ type: RESPONSE, id: m.id, error: (e as Error).message } satisfies MetricsResponse),
    );
  });
  return scrape;
}
