import type { Config } from "./config/schema.js";
import { createHttpDoor, type HttpDoor } from "./doors/http/http-door.js";
import { createRouter } from "./engine/router.js";
import { createStreamEngine, type StreamEngine } from "./engine/stream-engine.js";
import { createProviders } from "./providers/index.js";

/** A running gateway: its doors, the ports they bound, and how to stop it. */
export interface Gateway {
  readonly engine: StreamEngine;
  readonly http: HttpDoor;
  /** The HTTP/WebSocket port actually bound. */
  readonly httpPort: number;
  /** Stops accepting, cancels every stream, and closes every connection. */
  close(): Promise<void>;
}

/**
 * Starts the gateway on `config`: builds the providers and the engine, and
 * opens the doors. Ports of 0 bind free ports (see `httpPort`).
 */
export async function startGateway(config: Config): Promise<Gateway> {
  const shutdown = new AbortController();
  let draining = false;
  const router = createRouter(createProviders(config), config.aliases);
  const engine = createStreamEngine({
    router,
    timeoutMs: config.limits.timeoutMs,
    idleTimeoutMs: config.limits.idleTimeoutMs,
    maxStreamMs: config.limits.maxStreamMs,
    shutdownSignal: shutdown.signal,
  });
  const http = createHttpDoor({ engine, config, draining: () => draining });
  const httpPort = await http.listen(config.http.host, config.http.port);
  return {
    engine,
    http,
    httpPort,
    close() {
      draining = true;
      http.stopListening();
      shutdown.abort();
      http.closeAll();
      return Promise.resolve();
    },
  };
}
