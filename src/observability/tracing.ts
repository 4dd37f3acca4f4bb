import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { Finish_Reason } from "../gen/spillway/v1/chunk.js";
import type { StreamSummary } from "../engine/active-stream.js";
import { Code } from "../engine/code.js";
import type { AttemptInfo, Capability } from "../engine/stream-engine.js";
import { setUpstreamTraceparent } from "./trace-carrier.js";

/** Settings of {@link createTracing} (config `tracing`, filled from the `OTEL_*` variables). */
export interface TracingSettings {
  /** OTLP/HTTP traces URL (`…/v1/traces`). */
  readonly endpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly exportDelayMs: number;
}

/** What a door says about its request when the span starts. */
export interface RequestSpanStart {
  readonly door: "http" | "grpc" | "ws";
  /** Span name: `POST /v1/chat/completions`, the RPC's full path, `realtime session`. */
  readonly name: string;
  /** The client's `traceparent` (HTTP header, gRPC metadata, WebSocket upgrade header); a new trace when absent or malformed. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
  readonly attributes?: Attributes;
}

/** How a request ended, for its span. */
export interface RequestSpanEnd {
  readonly status: number | string;
  readonly outcome: string;
  readonly summary?: StreamSummary | undefined;
  readonly errorCode?: string | undefined;
}

/**
 * A door's server span for one request or realtime session. Its
 * `traceparent` goes into the call's CallOptions, so every engine attempt is
 * its child.
 */
export interface RequestSpan {
  readonly traceId: string;
  readonly traceparent: string;
  /** Ends the span (once; later calls do nothing). */
  end(e: RequestSpanEnd): void;
}

/** The gateway's tracer: door spans, the engine's attempt hook, export. */
export interface Tracing {
  startRequest(start: RequestSpanStart): RequestSpan;
  /** For StreamEngineOptions.onAttempt: a CLIENT span per attempt, its traceparent sent upstream. */
  onAttempt(info: AttemptInfo): (summary: StreamSummary) => void;
  /** Exports every ended span now. */
  flush(): Promise<void>;
  /** Flushes and stops exporting. */
  shutdown(): Promise<void>;
}

const OPERATION: Record<Capability, string> = { generate: "chat", synthesize: "text_to_speech", synthesizeStream: "text_to_speech", transcribe: "speech_to_text" };
const propagator = new W3CTraceContextPropagator();

function finishName(r: Finish_Reason): string {
  const name = Finish_Reason[r];
  return typeof name === "string" ? name.replace(/^REASON_/, "").toLowerCase() : String(r);
}

/** GenAI semantic-convention attributes of a finished stream. */
function streamAttributes(s: StreamSummary): Attributes {
  const a: Attributes = {
    "gen_ai.provider.name": s.route.provider.name,
    "gen_ai.request.model": s.route.model,
    "gen_ai.response.model": s.route.model,
    "gen_ai.response.id": s.id,
    "gen_ai.usage.input_tokens": s.usage.inputTokens,
    "gen_ai.usage.output_tokens": s.usage.outputTokens,
    "spillway.model_id": s.route.id,
    "spillway.chunks": s.chunks,
  };
  if (s.usage.cachedInputTokens) a["spillway.usage.cached_input_tokens"] = s.usage.cachedInputTokens;
  if (s.finishReason !== undefined) a["gen_ai.response.finish_reasons"] = [finishName(s.finishReason)];
  const key = s.labels["key"];
  if (key) a["spillway.upstream_key.name"] = key;
  const cache = s.labels["cache"];
  if (cache) a["spillway.cache"] = cache;
  return a;
}

function traceparentOf(span: Span): string {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return carrier["traceparent"]!;
}

function parentContext(traceparent: string | undefined, tracestate?: string) {
  if (!traceparent) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent };
  if (tracestate) carrier["tracestate"] = tracestate;
  return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}

class OpenRequestSpan implements RequestSpan {
  readonly traceId: string;
  readonly traceparent: string;
  /** Whether `gen_ai.operation.name` is set (the first attempt sets it unless the door did). */
  named: boolean;
  private ended = false;

  constructor(
    readonly span: Span,
    private readonly open: Map<string, OpenRequestSpan>,
  ) {
    this.traceId = span.spanContext().traceId;
    this.traceparent = traceparentOf(span);
    open.set(this.traceparent, this);
    this.named = false;
  }

  end(e: RequestSpanEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.open.delete(this.traceparent);
    const span = this.span;
    if (typeof e.status === "number") span.setAttribute("http.response.status_code", e.status);
    else span.setAttribute("rpc.response.status_code", e.status);
    span.setAttribute("spillway.outcome", e.outcome);
    if (e.summary) span.setAttributes(streamAttributes(e.summary));
    if (e.outcome === "server_error") {
      span.setStatus({ code: SpanStatusCode.ERROR, ...(e.errorCode ? { message: e.errorCode } : {}) });
    }
    if (e.errorCode) span.setAttribute("error.type", e.errorCode);
    span.end();
  }
}

/**
 * Creates the tracer: a BasicTracerProvider (no global registration, no
 * context manager: parents travel as `traceparent` strings in CallOptions)
 * with a batching OTLP/HTTP-protobuf exporter. Door spans are SERVER spans,
 * attempts CLIENT spans (`chat gpt-4o-mini`), with GenAI semantic-convention
 * attributes; the first chunk is the attempt's `gen_ai.first_chunk` event.
 * Prompts and completions are never recorded. The gateway key appears by
 * name (`spillway.key.name`), never the key.
 */
export function createTracing(settings: TracingSettings): Tracing {
  const exporter = new OTLPTraceExporter({ url: settings.endpoint, headers: { ...settings.headers } });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: settings.exportDelayMs })],
  });
  const tracer: Tracer = provider.getTracer("spillway");
  const open = new Map<string, OpenRequestSpan>();
  return {
    startRequest(start) {
      const span = tracer.startSpan(
        start.name,
        { kind: SpanKind.SERVER, attributes: { "spillway.door": start.door, ...start.attributes } },
        parentContext(start.traceparent, start.tracestate),
      );
      const opened = new OpenRequestSpan(span, open);
      opened.named = start.attributes?.["gen_ai.operation.name"] !== undefined;
      return opened;
    },
    onAttempt(info) {
      const { route, call, ctx } = info;
      const operation = OPERATION[info.capability];
      const parent = call.traceparent ? open.get(call.traceparent) : undefined;
      const keyName = call.principal && call.principal.index >= 0 ? call.principal.name : undefined;
      if (parent) {
        if (!parent.named) parent.span.setAttribute("gen_ai.operation.name", operation);
        parent.named = true;
        if (keyName) parent.span.setAttribute("spillway.key.name", keyName);
      }
      const attributes: Attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": route.provider.name,
        "gen_ai.request.model": route.model,
        "spillway.model_id": route.id,
        "spillway.attempt": info.attempt,
        "spillway.cache.hit": info.cached,
      };
      if (keyName) attributes["spillway.key.name"] = keyName;
      if (call.requestId) attributes["spillway.request_id"] = call.requestId;
      const span = tracer.startSpan(`${operation} ${route.model}`, { kind: SpanKind.CLIENT, attributes }, parentContext(call.traceparent));
      setUpstreamTraceparent(ctx.signal, traceparentOf(span));
      return (s) => {
        if (s.firstChunkAt !== undefined) span.addEvent("gen_ai.first_chunk", { "spillway.ttft_ms": Math.round((s.firstChunkAt - s.startedAt) * 100) / 100 }, s.firstChunkAt);
        span.setAttributes(streamAttributes(s));
        if (s.outcome !== "ok") {
          const code = Code[s.outcome.code];
          span.setAttribute("error.type", s.outcome.reason ?? code);
          span.setAttribute("spillway.error.code", code);
          if (s.outcome.code !== Code.Canceled) span.setStatus({ code: SpanStatusCode.ERROR, message: s.outcome.message });
          if (s.firstChunkAt === undefined) span.setAttribute("spillway.failed_before_first_chunk", true);
        }
        span.end(s.endedAt);
      };
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
