/**
 * One `/metrics` for the whole gateway under `--workers N`: a scrape lands on
 * any worker, which asks the primary over IPC; the primary collects every
 * worker's registry (prom-client's `AggregatorRegistry`: counters and
 * histograms summed, so totals do not jump between workers' values) and
 * answers. Process metrics carry a `worker` label, so event-loop lag and heap
 * stay per worker.
 */
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";

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
