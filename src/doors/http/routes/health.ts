import type { HttpRoute } from "../route.js";

/** `GET /healthz`: the process is up and serving. */
export const healthRoute: HttpRoute = {
  method: "get",
  pattern: "/healthz",
  public: true,
  handle(ex) {
    ex.json(200, { status: "ok" });
  },
};

/** `GET /readyz`: ready for traffic (503 while draining for shutdown), with each provider. */
export const readyRoute: HttpRoute = {
  method: "get",
  pattern: "/readyz",
  public: true,
  handle(ex, { engine, draining }) {
    const providers = engine.router.providers.map((p) => p.name);
    if (draining()) ex.json(503, { status: "draining", providers });
    else ex.json(200, { status: "ready", providers });
  },
};
