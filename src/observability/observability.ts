import type { Logger } from "pino";
import { Code } from "../engine/code.js";
import type { StreamSummary } from "../engine/active-stream.js";
import { SpillwayError } from "../engine/errors.js";
import { isOverloadRefusal } from "../engine/admission.js";
import type { ConsoleFeed } from "./console-feed.js";
import { sampleRefusal } from "./refusal-log.js";
import { writeRequestLine, type RequestLineFields } from "./request-line.js";
import type { Metrics } from "./metrics.js";
// The opt-in phase probe subscribes to the engine's phase channel when loaded (SPILLWAY_PHASE_TRACE).
import "./phase-trace.js";
import type { RequestSpan, Tracing } from "./tracing.js";

/** Metrics and logs of one gateway, handed to every door. */
export interface Observability {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** OpenTelemetry tracing; absent when off (doors then create no spans). */
  readonly tracing?: Tracing | undefined;
  /** The console's in-memory feed (the page at `/`); none in tests that do not need it. */
  readonly console?: ConsoleFeed | undefined;
}

/** What a door knows about a finished request, for its log line and metrics. */
export interface RequestRecord {
  readonly requestId: string;
  readonly door: "http" | "grpc" | "ws";
  /** The route (`/v1/chat/completions`) or RPC (`Generate`) or event. */
  readonly route: string;
  /** The wire API shape the request spoke (`openai`, `anthropic`, `grpc`, `realtime`), when the door knows. */
  readonly shape?: string | undefined;
  /** The gateway key's name (never the key), when the door authenticated one. */
  readonly caller?: string | undefined;
  /** HTTP status, or the gRPC status name, or `ok`/`error` for WebSocket responses. */
  readonly status: number | string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** The stream the engine served, when one was opened. */
  readonly summary?: StreamSummary | undefined;
  /** The error that ended the request, if any. */
  readonly error?: unknown;
  readonly bytesOut?: number | undefined;
  /** Seconds of audio the door sent that the engine summary does not count (realtime speech). */
  readonly audioOutSeconds?: number | undefined;
  /** True when the client went away before the end. */
  readonly clientDisconnected: boolean;
  /** The door's span (tracing on): ended here, its trace id logged. */
  readonly span?: RequestSpan | undefined;
}

/**
 * The request line's logger: `logger` without its redaction. Redacting
 * (paths such as `*.key`) walks every line's fields and was a third of the
 * line's cost; the request line names its fields itself and none of them
 * can hold a secret, except `key` (the upstream key's name), so a line with
 * a `key` still goes through the redacting logger and comes out as before.
 */
const unredacted = new WeakMap<Logger, Logger>();
function requestLogger(logger: Logger, hasKey: boolean): Logger {
  if (hasKey) return logger;
  let l = unredacted.get(logger);
  if (!l) {
    l = logger.child({}, { redact: [] });
    unredacted.set(logger, l);
  }
  return l;
}

const CLIENT_SIDE: ReadonlySet<Code> = new Set([Code.InvalidArgument, Code.NotFound, Code.Unauthenticated, Code.PermissionDenied, Code.ResourceExhausted, Code.FailedPrecondition, Code.OutOfRange]);

function outcomeOf(r: RequestRecord): "ok" | "cancelled" | "client_error" | "server_error" {
  if (r.clientDisconnected) return "cancelled";
  if (r.summary && r.summary.outcome !== "ok") return r.summary.outcome.code === Code.Canceled ? "cancelled" : "server_error";
  if (r.error !== undefined) {
    const e = SpillwayError.from(r.error);
    if (e.code === Code.Canceled) return "cancelled";
    return CLIENT_SIDE.has(e.code) && !e.fromUpstream ? "client_error" : "server_error";
  }
  if (typeof r.status === "number" && r.status >= 400) return r.status >= 500 ? "server_error" : "client_error";
  return "ok";
}

/**
 * Records a finished request: one structured log line (id, door, route,
 * model, provider, status, TTFT, duration, tokens, disconnect, `cache`
 * (`hit`/`miss` when the response cache served or stored it), `traceId` when
 * traced — never headers, keys or prompt text), the matching metrics, and
 * ends the request's span.
 */
export function recordRequest(obs: Observability, r: RequestRecord): void {
  const s = r.summary;
  const now = performance.now();
  const provider = s?.route.provider.name ?? "none";
  const model = s?.route.id ?? "none";
  const outcome = outcomeOf(r);
  const ttftMs = s?.firstChunkAt !== undefined ? s.firstChunkAt - r.startedAt : undefined;
  const durationMs = (s?.endedAt ?? now) - r.startedAt;
  const m = obs.metrics;
  const shape = r.shape ?? (r.door === "ws" ? "realtime" : r.door);
  const series = m.requestSeries(r.door, r.route, shape, m.modelLabel(model), provider, outcome, String(r.status));
  series.requests.inc(1);
  if (s) {
    if (ttftMs !== undefined) series.timeToFirstChunk.observe(ttftMs / 1000);
    series.streamDuration.observe(durationMs / 1000);
    series.chunksOut.inc(s.chunks);
    if (s.usage.inputTokens) series.tokensIn.inc(s.usage.inputTokens);
    if (s.usage.outputTokens) series.tokensOut.inc(s.usage.outputTokens);
    if (s.usage.inputAudioSeconds) m.audioSeconds.inc({ direction: "in", provider }, s.usage.inputAudioSeconds);
    if (s.usage.outputAudioSeconds) m.audioSeconds.inc({ direction: "out", provider }, s.usage.outputAudioSeconds);
  }
  const cache = s?.labels["cache"];
  if (cache) m.cacheRequests.inc({ result: cache });
  if (r.bytesOut) series.bytesOut.inc(r.bytesOut);
  if (r.audioOutSeconds) m.audioSeconds.inc({ direction: "out", provider: r.door }, r.audioOutSeconds);
  r.span?.end({ status: r.status, outcome, summary: s, errorCode: r.error !== undefined ? Code[SpillwayError.from(r.error).code] : s && s.outcome !== "ok" ? Code[s.outcome.code] : undefined });
  const err = r.error !== undefined ? SpillwayError.from(r.error) : s && s.outcome !== "ok" ? s.outcome : undefined;
  const key = s?.labels?.["key"];
  // Refusals for overload: one line a second, the rest counted (see refusal-log.ts).
  const refusedUnlogged = err && !s && isOverloadRefusal(err) ? sampleRefusal(obs.logger, now) : -1;
  if (refusedUnlogged !== undefined) {
    const fields: RequestLineFields = {
      requestId: r.requestId,
      streamId: s?.id,
      door: r.door,
      route: r.route,
      shape: r.shape,
      model,
      provider,
      caller: r.caller,
      key,
      status: r.status,
      outcome,
      ttftMs: ttftMs === undefined ? undefined : Math.round(ttftMs * 100) / 100,
      durationMs: Math.round(durationMs * 100) / 100,
      inputTokens: s?.usage.inputTokens,
      outputTokens: s?.usage.outputTokens,
      reasoningTokens: s?.usage.reasoningTokens || undefined,
      chunks: s?.chunks,
      bytesOut: r.bytesOut,
      clientDisconnected: r.clientDisconnected,
      error: err ? { code: Code[err.code], message: err.message } : undefined,
      cache,
      cachedInputTokens: s?.usage.cachedInputTokens || undefined,
      traceId: r.span?.traceId,
      refusedUnlogged: refusedUnlogged > 0 ? refusedUnlogged : undefined,
    };
    // Lines without a `key` are written directly (same bytes, see request-line.ts); the rest through the redacting logger.
    if (key !== undefined || !writeRequestLine(obs.logger, fields)) requestLogger(obs.logger, key !== undefined).info(fields, "request finished");
  }
  obs.console?.add({
    at: Date.now(),
    door: r.door,
    route: r.route,
    model,
    provider,
    key: r.caller ?? "anonymous",
    status: r.status,
    outcome,
    ttftMs: ttftMs === undefined ? null : Math.round(ttftMs * 100) / 100,
    durationMs: Math.round(durationMs * 100) / 100,
    inputTokens: s?.usage.inputTokens ?? 0,
    outputTokens: s?.usage.outputTokens ?? 0,
    cache: cache ?? null,
  });
}
