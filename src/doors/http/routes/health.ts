import type { HttpRoute } from "../route.js";
import { openAiShape } from "../shapes/openai/shape.js";

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

/** `GET /metrics`: Prometheus text format (no gateway key needed, like the health checks). */
export const metricsRoute: HttpRoute = {
  method: "get",
  pattern: "/metrics",
  shape: openAiShape,
  public: true,
  async handle(ex, _call, _body, { obs }) {
    const registry = obs.metrics.registry;
    ex.send(200, registry.contentType, await registry.metrics());
  },
};
