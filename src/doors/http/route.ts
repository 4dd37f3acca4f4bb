import type { ReloadOutcome } from "../../config/reload.js";
import type { Config } from "../../config/schema.js";
import type { EngineStream } from "../../engine/active-stream.js";
import type { Lease } from "../../engine/admission.js";
import type { StreamEngine, TranscribeAudio } from "../../engine/stream-engine.js";
import type { GenerateRequest, SynthesizeRequest, TranscribeConfig } from "../../gen/spillway/v1/request.js";
import type { Observability } from "../../observability/observability.js";
import type { HttpExchange } from "./exchange.js";
import type { Shape } from "./shapes/shape.js";

/**
 * What every HTTP route handler can use of the gateway. The engine is seen
 * without its stream-opening methods: a handler opens streams only through
 * its {@link RouteCall}, which carries the request's policy.
 */
export interface HttpDoorContext {
  readonly engine: Pick<StreamEngine, "router" | "admission" | "listModels" | "isCircuitOpen" | "streams">;
  readonly config: Config;
  /** True once the server is draining for shutdown. */
  readonly draining: () => boolean;
  /** Metrics and logs. */
  readonly obs: Observability;
  /** Reloads the config everywhere (`POST /admin/reload`). */
  readonly reload: () => Promise<ReloadOutcome>;
}

/**
 * The engine, as one request may use it: every call carries the request's
 * abort signal (client disconnect), its caller (gateway key: model allow-list
 * and limits are checked by the engine's admission), the request id, the
 * fallbacks the client asked for, and reports the stream's summary for the
 * request's log line; the stream's `x-spillway-*` headers go on the response.
 */
export interface RouteCall {
  /**
   * With `options.streamId`, the stream gets that id; with `options.signal`,
   * the call runs under that signal instead of the client's connection (a
   * detached, background generation: the client leaving does not abort it).
   */
  generate(req: GenerateRequest, fallbacks?: readonly string[], options?: GenerateOptions): Promise<EngineStream>;
  synthesize(req: SynthesizeRequest, fallbacks?: readonly string[]): Promise<EngineStream>;
  /**
   * `audio`: read as it arrives, or held whole (an array: retried and
   * failed over, see `StreamEngine.transcribe`). `completed`: the request as
   * completed after the audio began (see `Provider.transcribe`).
   */
  transcribe(config: TranscribeConfig, audio: TranscribeAudio, completed?: Promise<TranscribeConfig>): Promise<EngineStream>;
  /**
   * Admits the request against the key's policy (model list, requests/min,
   * concurrent streams) without opening an engine stream, for a route that
   * asks no upstream (`count_tokens`): the lease takes over the slot the
   * request was let in with (`admission.enter`), so the request holds one
   * slot, not two. Release the lease when the work is done. Rejects as
   * `Admission.admit` does (401/403/429/503).
   */
  admit(models: readonly string[]): Promise<Lease>;
}

/** Per-call choices of {@link RouteCall.generate}. */
export interface GenerateOptions {
  readonly streamId?: string;
  readonly signal?: AbortSignal;
  /** See `CallOptions.onAdmitted`: the call passed admission and routing and now waits for the upstream. */
  readonly onAdmitted?: (model: string) => void;
}

/** A request a route accepts: used by the policy tests that run over every route. */
export interface RouteExample {
  /** The model the request asks for (a local model the route serves). */
  readonly model: string;
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

/**
 * One HTTP route. With `body: "json"` the runner reads and parses the body
 * (content type, size limit, JSON) before calling the handler; with
 * `body: "stream"` the handler must call `ex.streamBody` before its first
 * `await` (uWS delivers body data only to a handler registered at once).
 */
export interface HttpRoute {
  readonly method: "get" | "post" | "delete";
  readonly pattern: string;
  /** The wire shape: its key headers, CORS headers and error rendering. */
  readonly shape: Shape;
  readonly body?: "json" | "stream";
  /** Served without a gateway key and while draining (health checks). */
  readonly public?: boolean;
  /**
   * For routes that open engine streams: a minimal valid request (the
   * table-driven policy test sends it to every such route; a POST route
   * without one fails that test).
   */
  readonly example?: () => RouteExample;
  /**
   * For a route that streams from the durable log without opening an engine
   * stream (replay, then follow live: `GET /v1/responses/{id}?stream=true`).
   * A request for which `when` is true is refused past capacity like an
   * engine route (`admission.enter`, before the handler runs; 503 +
   * Retry-After in the route's shape) and holds that one slot until it
   * ends, however it ends (a request that would wait in the adaptive queue
   * waits for it after its body is read). `query`, for a route without an
   * `example`, is a query string that makes a request follow (the policy
   * test sends it to every such route).
   */
  readonly follows?: { readonly when: (ex: HttpExchange) => boolean; readonly query?: string };
  handle(ex: HttpExchange, call: RouteCall, body: unknown, ctx: HttpDoorContext): Promise<void> | void;
}
