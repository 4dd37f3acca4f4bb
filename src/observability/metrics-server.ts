import { createServer, type Server } from "node:http";
import { keyMatches } from "../engine/admission.js";

/** Settings of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  /** When set, scrapes must send `Authorization: Bearer <key>`. */
  readonly key?: string | undefined;
  readonly contentType: string;
  readonly scrape: () => Promise<string>;
}

/** A running metrics server. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * `/metrics` on a port of its own (`metrics.port`), so operators can keep it
 * off the public port: GET /metrics answers the scrape, anything else 404.
 */
export function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    if (o.key && !keyMatches(o.key, req.headers.authorization)) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("a metrics key is required\n");
      return;
    }
    o.scrape().then(
      (text) => res.writeHead(200, { "content-type": o.contentType }).end(text),
      (e: unknown) => res.writeHead(503, { "content-type": "text/plain" }).end(`metrics unavailable: ${(e as Error).message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      const { port } = server.address() as { port: number };
      resolve({ port, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
