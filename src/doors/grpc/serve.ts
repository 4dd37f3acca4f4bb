import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import type { EngineStream } from "../../engine/active-stream.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { CallOptions } from "../../engine/stream-engine.js";
import type { Ticket } from "../../engine/admission.js";
import type { StreamSummary } from "../../engine/active-stream.js";
import { logger } from "../../observability/logger.js";
import { recordRequest } from "../../observability/observability.js";
import { cacheModeOf } from "../../engine/cache/engine-cache.js";
import { admitCall } from "./auth.js";
import { createCallScope, type SurfaceCall } from "./call-scope.js";
import type { GrpcDoorContext } from "./context.js";
import { pipeToCall, type ChunkSink } from "./pipe.js";
import { toGrpcError } from "./status.js";
import { directSink, earlyTicket } from "./write-coalescing.js";

/** A server-streaming or bidi call, as far as the door uses it. */
export interface StreamingCall extends SurfaceCall, ChunkSink {
  readonly metadata: Metadata;
  getPath(): string;
  /** Ends the call with status OK once buffered chunks are sent. */
  end(): unknown;
  /** `emit("error", status)` ends the call with that status. */
  emit(event: "error", status: Error): boolean;
}

/** One metadata value as a string ("" when absent). */
function metadataText(metadata: Metadata, name: string): string {
  const v = metadata.get(name)[0];
  return typeof v === "string" ? v : "";
}

/** The call's `x-request-id` metadata, or a new id. */
function requestIdOf(metadata: Metadata): string {
  const v = metadata.get("x-request-id")[0];
  return typeof v === "string" && v ? v.slice(0, 128) : randomUUID();
}

/**
 * Ends a call that failed before its first chunk with the error's status.
 * Nothing is sent when the client has already gone; unexpected errors are
 * logged (the client only sees "internal error").
 */
export function failCall(call: StreamingCall, reason: unknown): void {
  if (call.cancelled) return;
  const err = SpillwayError.from(reason);
  if (err.code === Code.Internal || err.code === Code.Unknown) {
    logger.error({ err: reason, method: call.getPath() }, "gRPC call failed");
  }
  call.emit("error", toGrpcError(err));
}

/**
 * The call's admission ticket: the one the interceptor took on the request
 * metadata (write-coalescing.ts), before the message was read; or, where no
 * interceptor checked the call, `Admission.enter()` now. Undefined when the
 * call was refused here: it has then ended with `UNAVAILABLE` (and the
 * refusal is recorded). Release the ticket when the call ends.
 */
export function admitEarly(call: StreamingCall, ctx: GrpcDoorContext): Ticket | undefined {
  const early = earlyTicket(call.metadata);
  if (early !== undefined) return early;
  const startedAt = performance.now();
  try {
    return ctx.engine.admission.enter();
  } catch (e) {
    failCall(call, e);
    if (ctx.obs) {
      const path = call.getPath();
      recordRequest(ctx.obs, { requestId: requestIdOf(call.metadata), door: "grpc", route: path.slice(path.lastIndexOf("/") + 1), status: Code[SpillwayError.from(e).code], startedAt, summary: undefined, error: e, clientDisconnected: false });
    }
    return undefined;
  }
}

/**
 * Runs one streaming call: takes its admission ticket ({@link admitEarly}:
 * past capacity it was refused before its message was decoded), admits it
 * (draining, auth hook), opens the engine stream with the
 * call's signal and deadline, and pipes the chunks with backpressure. The
 * engine resolves with a primed stream or rejects before the first chunk:
 * a rejection becomes the call's non-OK status; once chunks flow, errors
 * are in-band chunks and the call ends OK.
 */
export async function serveStream(
  call: StreamingCall,
  ctx: GrpcDoorContext,
  open: (opts: CallOptions) => Promise<EngineStream>,
): Promise<void> {
  const startedAt = performance.now();
  // Past capacity, refused first: before the call scope, tracing and auth (by the interceptor: before the message is decoded).
  const ticket = admitEarly(call, ctx);
  if (ticket === undefined) return;
  const scope = createCallScope(call, ctx.inFlight);
  let summary: StreamSummary | undefined;
  let error: unknown;
  const span = ctx.obs?.tracing?.startRequest({
    door: "grpc",
    name: call.getPath().replace(/^\//, ""),
    traceparent: metadataText(call.metadata, "traceparent"),
    tracestate: metadataText(call.metadata, "tracestate"),
    attributes: { "rpc.system": "grpc", "rpc.method": call.getPath() },
  });
  ctx.active.calls++;
  try {
    const granted = await admitCall(ctx, call.metadata, call.getPath());
    const cache = cacheModeOf(metadataText(call.metadata, "x-spillway-cache"));
    // The call's cheap abort source, not an AbortSignal: no signal or listener per call on the engine's side or the pipe's.
    const stream = await open({ ...granted, ticket, abortSource: scope.abortSource, deadline: scope.deadline, onStreamEnd: (s) => (summary = s), traceparent: span?.traceparent, cache });
    await pipeToCall(directSink(call.metadata) ?? call, stream, scope.abortSource);
    if (!call.cancelled) call.end();
  } catch (e) {
    error = e;
    failCall(call, e);
  } finally {
    ticket.release();
    ctx.active.calls--;
    scope.dispose();
    if (ctx.obs) {
      const path = call.getPath();
      recordRequest(ctx.obs, {
        requestId: requestIdOf(call.metadata),
        door: "grpc",
        route: path.slice(path.lastIndexOf("/") + 1),
        status: error === undefined ? "OK" : Code[SpillwayError.from(error).code],
        startedAt,
        summary,
        error,
        clientDisconnected: call.cancelled && error === undefined,
        span,
      });
    }
  }
}
