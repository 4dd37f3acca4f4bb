/**
 * A test OpenTelemetry collector on loopback: an HTTP server at `/v1/traces`
 * that decodes OTLP/HTTP protobuf `ExportTraceServiceRequest`s with the
 * OpenTelemetry proto definitions (the generated root that
 * @opentelemetry/otlp-transformer ships) and keeps every span.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root: any = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

/** One received span, flattened: ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly events: Array<{ name: string; attributes: Record<string, unknown> }>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: number;
  readonly resource: Record<string, unknown>;
}

/** The running receiver. */
export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT` (the `OTEL_EXPORTER_OTLP_ENDPOINT`). */
  readonly origin: string;
  readonly spans: ReceivedSpan[];
  /** Headers of every export request. */
  readonly exports: IncomingHttpHeaders[];
  close(): Promise<void>;
}

function value(v: any): unknown {
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

function attributes(list: any[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

const hex = (b: string | undefined): string => (b ? Buffer.from(b, "base64").toString("hex") : "");

/** Starts the receiver on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const exports: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces" || req.headers["content-type"] !== "application/x-protobuf") {
        res.writeHead(404).end();
        return;
      }
      exports.push(req.headers);
      const msg = ExportTraceServiceRequest.decode(Buffer.concat(parts));
      const obj = ExportTraceServiceRequest.toObject(msg, { longs: String, bytes: String, defaults: false });
      for (const rs of obj.resourceSpans ?? []) {
        const resource = attributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hex(s.traceId),
              spanId: hex(s.spanId),
              parentSpanId: hex(s.parentSpanId),
              name: s.name,
              kind: s.kind ?? 0,
              attributes: attributes(s.attributes),
              events: (s.events ?? []).map((e: any) => ({ name: e.name, attributes: attributes(e.attributes) })),
              status: s.status?.code ?? 0,
              resource,
            });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${port}`,
    spans,
    exports,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
