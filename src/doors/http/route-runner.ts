import type { EngineStream, StreamSummary } from "../../engine/active-stream.js";
import type { GenerateRequest, SynthesizeRequest, TranscribeConfig } from "../../gen/spillway/v1/request.js";
import type { CallOptions, StreamEngine, TranscribeAudio } from "../../engine/stream-engine.js";
import type { Lease, Ticket } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { cacheModeOf } from "../../engine/cache/engine-cache.js";
import { recordRequest } from "../../observability/observability.js";
import type { RequestSpan } from "../../observability/tracing.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";
import type { HttpExchange } from "./exchange.js";
import type { GenerateOptions, HttpDoorContext, HttpRoute, RouteCall } from "./route.js";
import { parseJsonText } from "./validation.js";

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\s*(;|$)/;

/**
 * Headers saying what served a stream: the provider, the model id (which
 * differs from the requested one after a fallback) and, when the provider
 * has several keys, the key's name (never the key).
 */
export function routeHeaders(stream: EngineStream): ReadonlyArray<readonly [string, string]> {
  const key = stream.labels["key"];
  const cache = stream.labels["cache"];
  // The common case, neither label: one shared list per provider and model id (read-only; made once).
  if (!key && !cache) return sharedRouteHeaders(stream.route.provider, stream.route.id);
  const out: Array<readonly [string, string]> = [
    ["x-spillway-provider", stream.route.provider.name],
    ["x-spillway-model", stream.route.id],
  ];
  if (key) out.push(["x-spillway-key", key]);
  if (cache) out.push(["x-spillway-cache", cache]);
  return out;
}

/** Most model ids whose headers are kept per provider (an OpenAI-compatible provider takes any model name). */
const SHARED_HEADERS_PER_PROVIDER = 256;
const sharedHeaders = new WeakMap<object, Map<string, ReadonlyArray<readonly [string, string]>>>();

/** The provider and model headers of `id` on `provider`, made once (up to {@link SHARED_HEADERS_PER_PROVIDER} ids a provider). */
function sharedRouteHeaders(provider: { readonly name: string }, id: string): ReadonlyArray<readonly [string, string]> {
  let byId = sharedHeaders.get(provider);
  if (!byId) sharedHeaders.set(provider, (byId = new Map<string, ReadonlyArray<readonly [string, string]>>()));
  let h = byId.get(id);
  if (!h) {
    h = Object.freeze([Object.freeze(["x-spillway-provider", provider.name] as const), Object.freeze(["x-spillway-model", id] as const)]);
    if (byId.size < SHARED_HEADERS_PER_PROVIDER) byId.set(id, h);
  }
  return h;
}

/**
 * The engine, bound to one exchange's policy (see {@link RouteCall}). A
 * class, not an object of arrows: under tsx (esbuild keepNames) each named
 * arrow made per request costs an `Object.defineProperty`.
 */
class BoundRouteCall implements RouteCall {
  private readonly cache: ReturnType<typeof cacheModeOf>;

  constructor(
    private readonly ex: HttpExchange,
    private readonly engine: StreamEngine,
    private readonly span: RequestSpan | undefined,
    private readonly ticket: Ticket | undefined,
  ) {
    this.cache = cacheModeOf(ex.headers["x-spillway-cache"]);
  }

  private options(fallbacks?: readonly string[], extra?: GenerateOptions): CallOptions {
    const ex = this.ex;
    return {
      // The client's leaving reaches the engine through the exchange's cheap abort source, unless the call is detached.
      signal: extra?.signal,
      abortSource: extra?.signal ? undefined : ex.abortSource,
      streamId: extra?.streamId,
      onAdmitted: extra?.onAdmitted,
      principal: ex.principal,
      ticket: this.ticket,
      requestId: ex.requestId,
      fallbacks,
      onStreamEnd: summaryOf(ex),
      traceparent: this.span?.traceparent,
      cache: this.cache,
    };
  }

  private opened(stream: EngineStream): EngineStream {
    this.ex.addHeaders(routeHeaders(stream));
    return stream;
  }

  generate(req: GenerateRequest, fallbacks?: readonly string[], extra?: GenerateOptions): Promise<EngineStream> {
    // A `then`, not an async method: one frame and promise fewer per request.
    return this.engine.generate(req, this.options(fallbacks, extra)).then((s) => this.opened(s));
  }

  async synthesize(req: SynthesizeRequest, fallbacks?: readonly string[]): Promise<EngineStream> {
    return this.opened(await this.engine.synthesize(req, this.options(fallbacks)));
  }

  async transcribe(config: TranscribeConfig, audio: TranscribeAudio, completed?: Promise<TranscribeConfig>): Promise<EngineStream> {
    return this.opened(await this.engine.transcribe(config, audio, this.options(), completed));
  }

  admit(models: readonly string[]): Promise<Lease> {
    return this.engine.admission.admit(this.ex.principal, models, this.ticket);
  }
}

/** The `onStreamEnd` that keeps the summary on the exchange (an anonymous arrow from a function: no `__name`). */
function summaryOf(ex: HttpExchange): (s: StreamSummary) => void {
  return (s) => (ex.summary = s);
}

/**
 * Runs one request through the door's policy, the same for every route:
 * refuses while draining (503), authenticates the gateway key from the
 * headers the route's shape names (401), refuses past the process's
 * capacity before the body is read (503, `admission.enter`: routes that open
 * engine streams, and requests that follow the durable log), checks the body's type, size and
 * JSON (415, 413, 400), hands the handler its {@link RouteCall} (abort on
 * disconnect, caller, request id, fallbacks, summary, `x-spillway-*`
 * headers), renders any error in the route's shape, and records one log line
 * and the metrics when the request ends, however it ends.
 */
export async function runRoute(ex: HttpExchange, route: HttpRoute, ctx: HttpDoorContext, engine: StreamEngine, inFlight: Set<HttpExchange>): Promise<void> {
  inFlight.add(ex);
  let error: unknown;
  let ticket: Ticket | undefined;
  const span = route.public
    ? undefined
    : ctx.obs.tracing?.startRequest({
        door: "http",
        name: `${route.method.toUpperCase()} ${route.pattern}`,
        traceparent: ex.headers["traceparent"],
        tracestate: ex.headers["tracestate"],
        attributes: { "http.request.method": route.method.toUpperCase(), "http.route": route.pattern, "url.path": ex.url, "spillway.request_id": ex.requestId, "spillway.shape": route.shape.name },
      });
  try {
    if (!route.public) {
      if (ctx.draining()) {
        throw new SpillwayError(Code.Unavailable, "The server is shutting down; retry on another instance.", {
          reason: "server_shutting_down",
          retryAfterMs: 1000,
        });
      }
      ex.principal = ctx.engine.admission.authenticate(route.shape.key(ex.headers));
      // Past capacity, a route that opens engine streams (one with an
      // `example`) is refused here: before the body is read or parsed (the
      // 503 goes out with a lingering close, as 413/415 do). See Admission.enter.
      // A request that follows the durable log (`route.follows`) is refused the same way.
      if (route.example || route.follows?.when(ex)) ticket = ctx.engine.admission.enter();
    }
    let body: unknown;
    if (route.body === "json") {
      if (!JSON_TYPE.test(ex.contentType)) {
        throw new SpillwayError(
          Code.InvalidArgument,
          `Unsupported Content-Type '${ex.contentType || "(none)"}': send the body as application/json.`,
          { httpStatus: 415, reason: "unsupported_media_type" },
        );
      }
      body = parseJsonText(await ex.readBodyText(ctx.config.http.maxBodyBytes));
    }
    tracePhase(TracePhase.BodyRead, ex, "sse");
    // A follower opens no engine stream to take the slot over: it holds the
    // slot itself for as long as it follows; one that would wait in the
    // adaptive queue waits here (its body, if any, is registered by now).
    if (ticket && !ticket.holding && route.follows?.when(ex)) ticket = await ctx.engine.admission.hold(ticket);
    await route.handle(ex, new BoundRouteCall(ex, engine, span, ticket), body, ctx);
  } catch (e) {
    const err = SpillwayError.from(e);
    error = err;
    if (err.code === Code.Internal || err.code === Code.Unknown) {
      ctx.obs.logger.error({ err: e, url: ex.url, requestId: ex.requestId }, "request failed");
    }
    if (!ex.aborted) ex.error(err);
  } finally {
    ticket?.release();
    inFlight.delete(ex);
    if (!route.public) {
      recordRequest(ctx.obs, {
        requestId: ex.requestId,
        door: "http",
        route: route.pattern,
        shape: route.shape.name,
        caller: ex.principal?.name,
        status: ex.aborted ? 499 : ex.status,
        startedAt: ex.startedAt,
        summary: ex.summary,
        error,
        bytesOut: ex.bytesOut,
        clientDisconnected: ex.aborted,
        span,
      });
    }
  }
}
