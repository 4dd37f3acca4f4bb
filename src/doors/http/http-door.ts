import uWS from "uWebSockets.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { recordRequest } from "../../observability/observability.js";
import { HttpExchange } from "./exchange.js";
import type { HttpDoorContext, HttpRoute } from "./route.js";
import { ROUTES } from "./routes/index.js";
import { parseJson } from "./validation.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";

/** The HTTP door: a uWS app serving the OpenAI-compatible routes. */
export interface HttpDoor {
  /** The uWS app, for other doors sharing the port (the WebSocket door). */
  readonly app: uWS.TemplatedApp;
  /** Starts listening; resolves with the port actually bound (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting connections. In-flight responses go on until they end. */
  stopListening(): void;
  /** Exchanges whose response has not ended yet. */
  readonly inFlight: ReadonlySet<HttpExchange>;
  /** Ends every in-flight exchange's connection at once. */
  closeAll(): void;
}

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\s*(;|$)/;

function isJsonType(contentType: string): boolean {
  return JSON_TYPE.test(contentType);
}

async function run(ex: HttpExchange, route: HttpRoute, ctx: HttpDoorContext, inFlight: Set<HttpExchange>): Promise<void> {
  inFlight.add(ex);
  let error: unknown;
  try {
    if (!route.public) {
      if (ctx.draining()) {
        throw new SpillwayError(Code.Unavailable, "The server is shutting down; retry on another instance.", {
          openAiCode: "server_shutting_down",
          retryAfterMs: 1000,
        });
      }
      ex.principal = ctx.engine.admission.authenticate(ex.authorization);
    }
    let body: unknown;
    if (route.body === "json") {
      if (!isJsonType(ex.contentType)) {
        throw new SpillwayError(
          Code.InvalidArgument,
          `Unsupported Content-Type '${ex.contentType || "(none)"}': send the body as application/json.`,
          { httpStatus: 415, openAiCode: "unsupported_media_type" },
        );
      }
      body = parseJson(await ex.readBody(ctx.config.http.maxBodyBytes));
    }
    tracePhase(TracePhase.BodyRead);
    await route.handle(ex, ctx, body);
  } catch (e) {
    const err = SpillwayError.from(e);
    error = err;
    if (err.code === Code.Internal || err.code === Code.Unknown) {
      ctx.obs.logger.error({ err: e, url: ex.url, requestId: ex.requestId }, "request failed");
    }
    if (!ex.aborted) ex.error(err);
  } finally {
    inFlight.delete(ex);
    if (!route.public) {
      recordRequest(ctx.obs, {
        requestId: ex.requestId,
        door: "http",
        route: route.pattern,
        status: ex.aborted ? 499 : ex.status,
        startedAt: ex.startedAt,
        summary: ex.summary,
        error,
        bytesOut: ex.bytesOut,
        clientDisconnected: ex.aborted,
      });
    }
  }
}

function notFound(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
  const ex = new HttpExchange(res, req);
  ex.error(
    new SpillwayError(Code.NotFound, `Unknown request URL: ${ex.method.toUpperCase()} ${ex.url}.`, {
      openAiCode: "unknown_url",
    }),
  );
}

/** Creates the HTTP door over the engine. Call `listen` to serve. */
export function createHttpDoor(ctx: HttpDoorContext, routes: readonly HttpRoute[] = ROUTES): HttpDoor {
  const tls = ctx.config.http.tls;
  // TLS (https/wss on the same routes) when configured; the openai SDK's realtime client only opens wss://.
  const app = tls
    ? uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile, ...(tls.passphrase ? { passphrase: tls.passphrase } : {}) })
    : uWS.App();
  const inFlight = new Set<HttpExchange>();
  let listenSocket: uWS.us_listen_socket | undefined;

  const allowed = new Map<string, string[]>();
  for (const route of routes) {
    const handler = (res: uWS.HttpResponse, req: uWS.HttpRequest): void => {
      void run(new HttpExchange(res, req), route, ctx, inFlight);
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
          .writeHeader("access-control-allow-headers", "authorization, content-type, x-request-id, openai-beta")
          .writeHeader("access-control-max-age", "86400")
          .endWithoutBody();
      });
    });
    app.any(pattern, (res, req) => {
      const ex = new HttpExchange(res, req);
      ex.error(
        new SpillwayError(Code.InvalidArgument, `Method ${ex.method.toUpperCase()} is not allowed on ${ex.url} (allowed: ${allow}).`, {
          httpStatus: 405,
          openAiCode: "method_not_allowed",
        }),
      );
    });
  }
  app.any("/*", notFound);

  return {
    app,
    inFlight,
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
    stopListening() {
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
    },
    closeAll() {
      for (const ex of inFlight) ex.close();
    },
  };
}
