import type { Config } from "../../config/schema.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import type { Observability } from "../../observability/observability.js";
import type { HttpExchange } from "./exchange.js";

/** What every HTTP route handler can use. */
export interface HttpDoorContext {
  readonly engine: StreamEngine;
  readonly config: Config;
  /** True once the server is draining for shutdown. */
  readonly draining: () => boolean;
  /** Metrics and logs. */
  readonly obs: Observability;
}

/**
 * One HTTP route. With `body: "json"` the door reads and parses the body
 * (content type, size limit, JSON) before calling the handler; with
 * `body: "stream"` the handler must call `ex.streamBody` before its first
 * `await` (uWS delivers body data only to a handler registered at once).
 */
export interface HttpRoute {
  readonly method: "get" | "post" | "delete";
  readonly pattern: string;
  readonly body?: "json" | "stream";
  /** Served without a gateway key and while draining (health checks). */
  readonly public?: boolean;
  handle(ex: HttpExchange, ctx: HttpDoorContext, body: unknown): Promise<void> | void;
}
