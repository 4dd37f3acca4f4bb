import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Admission } from "../../engine/admission.js";
import { SpillwayError } from "../../engine/errors.js";
import { refusalStatus, type EarlyCheck } from "./early-admission.js";
import type { StreamGate } from "./stream-gate.js";

/** Options of {@link createStreamRefusal}. */
export interface StreamRefusalOptions {
  /** Whose `entryRefusal()` decides. */
  readonly admission: Admission;
  /** Records each refusal (metrics, the sampled log line), as the interceptor's refusals are. */
  readonly check: EarlyCheck;
  /** The paths (`/spillway.v1.SpillwayService/Generate`, …) of the methods that are checked: the streaming ones. */
  readonly paths: ReadonlySet<string>;
}

/** A {@link StreamGate} that also says how many streams it refused. */
export interface StreamRefusal extends StreamGate {
  /** Calls refused at the HTTP/2 stream so far (before grpc-js saw them). */
  readonly refused: number;
}

/** Refusals' response headers, rendered once per shared refusal error (the ones `Admission` throws). */
const headersOfShared = new WeakMap<object, OutgoingHttpHeaders>();

/**
 * The trailers-only response a refused call gets — `:status` 200,
 * `content-type: application/grpc+proto`, `grpc-status`, `grpc-message`
 * (percent-encoded as grpc-js does) and the refusal's `spillway-*` trailers
 * ({@link refusalStatus}): the headers grpc-js sends for the same status
 * from the interceptor (its trailers-only response), in its order. Frozen
 * and cached per shared error: Node's `respond` copies it.
 */
export function refusalHeaders(reason: unknown): OutgoingHttpHeaders {
  const cached = typeof reason === "object" && reason !== null ? headersOfShared.get(reason) : undefined;
  if (cached) return cached;
  const s = refusalStatus(reason);
  const headers: OutgoingHttpHeaders = Object.freeze({
    "grpc-status": String(s.code),
    "grpc-message": encodeURI(s.details),
    [constants.HTTP2_HEADER_STATUS]: constants.HTTP_STATUS_OK,
    [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc+proto",
    ...s.metadata.toHttp2Headers(),
  });
  if (reason instanceof SpillwayError) headersOfShared.set(reason, headers);
  return headers;
}

const noop = (): void => undefined;

/**
 * The gRPC door's refusal at the HTTP/2 stream (issue 16): for a new stream
 * to one of `paths` with a gRPC content type, asks
 * `admission.entryRefusal()`; on a refusal answers with the pre-rendered
 * trailers-only response ({@link refusalHeaders}: `UNAVAILABLE` and the same
 * trailers as a refusal from the interceptor), discards the request's DATA
 * unread (as grpc-js does after a status) and records it through `check`,
 * and grpc-js never sees the stream. Anything else — another path, health,
 * reflection, unary ListModels, a wrong content type (grpc-js answers 415),
 * or room — goes on to grpc-js, whose interceptor then calls
 * `Admission.enter()` in the same synchronous turn (so it agrees) and hands
 * the ticket to the handler as before.
 */
export function createStreamRefusal(options: StreamRefusalOptions): StreamRefusal {
  const { admission, check, paths } = options;
  let refused = 0;
  const gate = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean => {
    const path = headers[constants.HTTP2_HEADER_PATH];
    if (typeof path !== "string" || !paths.has(path)) return false;
    const type = headers[constants.HTTP2_HEADER_CONTENT_TYPE];
    if (typeof type !== "string" || !type.startsWith("application/grpc")) return false;
    const startedAt = performance.now();
    const reason = admission.entryRefusal();
    if (reason === undefined) return false;
    refused++;
    // As grpc-js: an 'error' handler (a reset stream must not throw), then the status, then the request's bytes drained.
    stream.once("error", noop);
    // A stream the client already reset has nobody to answer (respond() would throw in the 'stream' listener).
    if (!stream.destroyed && !stream.closed) stream.respond(refusalHeaders(reason), { endStream: true });
    stream.resume();
    check.refused(headers["x-request-id"], path, reason, startedAt);
    return true;
  };
  return Object.defineProperty(gate, "refused", { get: () => refused, enumerable: true }) as StreamRefusal;
}
