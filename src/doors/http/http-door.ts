import { setTimeout as sleep } from "node:timers/promises";
import uWS from "uWebSockets.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import type { Door } from "../door.js";
import { HttpExchange } from "./exchange.js";
import type { HttpDoorContext, HttpRoute } from "./route.js";
import { runRoute } from "./route-runner.js";
import { ROUTES } from "./routes/index.js";
import { SHAPES } from "./shapes/index.js";
import type { Shape } from "./shapes/shape.js";

/** The HTTP door: a uWS app serving every shape's routes, under one route runner. */
export interface HttpDoor extends Door {
  /** The uWS app, for other doors sharing the port (the WebSocket door). */
  readonly app: uWS.TemplatedApp;
  /** Starts listening; resolves with the port actually bound (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** True once `drain` was called. */
  readonly draining: boolean;
  /** Exchanges whose response has not ended yet. */
  readonly inFlight: ReadonlySet<HttpExchange>;
}

/** What the HTTP door needs: the gateway context, with the whole engine (routes see less of it). */
export interface HttpDoorOptions extends Omit<HttpDoorContext, "draining" | "engine"> {
  readonly engine: StreamEngine;
}

/** The shape a request that matched no route is answered in: the first that claims it, else the default. */
function shapeFor(req: uWS.HttpRequest, shapes: readonly Shape[]): Shape {
  const url = req.getUrl();
  for (const s of shapes) {
    if (!s.claims) continue;
    const headers: Record<string, string> = {};
    for (const h of s.headers) headers[h] = req.getHeader(h);
    if (s.claims(url, headers)) return s;
  }
  return shapes[0]!;
}

/** Creates the HTTP door over the engine. Call `listen` to serve. */
export function createHttpDoor(options: HttpDoorOptions, routes: readonly HttpRoute[] = ROUTES, shapes: readonly Shape[] = SHAPES): HttpDoor {
  const tls = options.config.http.tls;
  // TLS (https/wss on the same routes) when configured; the openai SDK's realtime client only opens wss://.
  const app = tls
    ? uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile, ...(tls.passphrase ? { passphrase: tls.passphrase } : {}) })
    : uWS.App();
  const inFlight = new Set<HttpExchange>();
  let listenSocket: uWS.us_listen_socket | undefined;
  let draining = false;
  const ctx: HttpDoorContext = {
    engine: options.engine,
    // Read at each request: a config reload applies to the requests after it.
    get config() {
      return options.config;
    },
    obs: options.obs,
    reload: options.reload,
    draining: () => draining,
  };
  // Every shape's CORS headers, including a route's own variant of its shape.
  const corsHeaders = [...new Set([...shapes, ...routes.map((r) => r.shape)].flatMap((s) => s.corsHeaders))].join(", ");

  const allowed = new Map<string, string[]>();
  for (const route of routes) {
    const handler = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      void runRoute(new HttpExchange(res, req, route.shape), route, ctx, options.engine, inFlight);
    };
    if (route.method === "get") app.get(route.pattern, handler);
    else if (route.method === "post") app.post(route.pattern, handler);
    else app.del(route.pattern, handler);
    const methods = allowed.get(route.pattern) ?? [];
    methods.push(route.method.toUpperCase());
    allowed.set(route.pattern, methods);
  }
  for (const [pattern, methods] of allowed) {
    const allow = [...methods, "OPTIONS"].join(", ");
    app.options(pattern, (res) => {
      res.cork(() => {
        res
          .writeStatus("204 No Content")
          .writeHeader("access-control-allow-origin", "*")
          .writeHeader("access-control-allow-methods", allow)
          .writeHeader("access-control-allow-headers", corsHeaders)
          .writeHeader("access-control-max-age", "86400")
          .endWithoutBody();
      });
    });
    app.any(pattern, (res, req) => {
      const ex = new HttpExchange(res, req, shapeFor(req, shapes));
      ex.error(
        new SpillwayError(Code.InvalidArgument, `Method ${ex.method.toUpperCase()} is not allowed on ${ex.url} (allowed: ${allow}).`, {
          httpStatus: 405,
          reason: "method_not_allowed",
        }),
      );
    });
  }
  app.any("/*", (res, req) => {
    const ex = new HttpExchange(res, req, shapeFor(req, shapes));
    ex.error(new SpillwayError(Code.NotFound, `Unknown request URL: ${ex.method.toUpperCase()} ${ex.url}.`, { reason: "unknown_url" }));
  });

  return {
    name: "http",
    app,
    inFlight,
    get active() {
      return inFlight.size;
    },
    get draining() {
      return draining;
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (token) => {
          if (!token) {
            reject(new Error(`cannot listen on ${host}:${port} (in use, or not permitted)`));
            return;
          }
          listenSocket = token;
          resolve(uWS.us_socket_local_port(token));
        });
      });
    },
    drain() {
      draining = true;
    },
    async close(graceMs) {
      draining = true;
      const until = Date.now() + graceMs;
      while (inFlight.size > 0 && Date.now() < until) await sleep(10);
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      for (const ex of inFlight) ex.close();
    },
  };
}
