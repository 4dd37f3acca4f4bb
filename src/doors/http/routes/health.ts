import type { HttpRoute } from "../route.js";
import { openAiShape } from "../shapes/openai/shape.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import { keyMatches } from "../../../engine/admission.js";

/** `GET /healthz`: the process is up and serving; `pid` tells `--workers` processes apart. */
export const healthRoute: HttpRoute = {
  method: "get",
  pattern: "/healthz",
  shape: openAiShape,
  public: true,
  handle(ex) {
    ex.json(200, { status: "ok", pid: process.pid });
  },
};

/**
 * `GET /readyz`: ready for traffic (503 while draining for shutdown), with
 * each provider's state: `ok`, `circuit_open` (failing, skipped for a
 * while), and each model that is unavailable (a local engine not installed).
 */
export const readyRoute: HttpRoute = {
  method: "get",
  pattern: "/readyz",
  shape: openAiShape,
  public: true,
  async handle(ex, _call, _body, { engine, draining }) {
    const models = await engine.listModels(ex.signal);
    const providers = engine.router.providers.map((p) => {
      const unavailable = models.filter((m) => !m.available && m.id.startsWith(`${p.name}/`)).map((m) => ({ model: m.id, reason: m.unavailableReason }));
      return { name: p.name, state: engine.isCircuitOpen(p.name) ? "circuit_open" : "ok", unavailable };
    });
    const status = draining() ? "draining" : "ready";
    ex.json(draining() ? 503 : 200, { status, providers });
  },
};

/**
 * `GET /metrics`: Prometheus text format, for the whole gateway (summed over
 * `--workers N`). Open like the health checks unless `metrics.key` is set;
 * not here at all when `metrics.port` puts it on a port of its own.
 */
export const metricsRoute: HttpRoute = {
  method: "get",
  pattern: "/metrics",
  shape: openAiShape,
  public: true,
  async handle(ex, _call, _body, { obs, config }) {
    if (config.metrics.port !== undefined) {
      throw new SpillwayError(Code.NotFound, "Metrics are served on their own port (metrics.port).", { reason: "unknown_url" });
    }
    if (config.metrics.key && !keyMatches(config.metrics.key, ex.headers["authorization"])) {
      throw new SpillwayError(Code.Unauthenticated, "A metrics key is required: send it as 'Authorization: Bearer <key>'.", { reason: "invalid_api_key" });
    }
    ex.send(200, obs.metrics.registry.contentType, await obs.metrics.scrape());
  },
};
