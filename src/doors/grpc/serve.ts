import type { Metadata } from "@grpc/grpc-js";
import type { EngineStream } from "../../engine/active-stream.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { CallOptions } from "../../engine/stream-engine.js";
import { logger } from "../../observability/logger.js";
import { admitCall } from "./auth.js";
import { createCallScope, type SurfaceCall } from "./call-scope.js";
import type { GrpcDoorContext } from "./context.js";
import { pipeToCall, type ChunkSink } from "./pipe.js";
import { toGrpcError } from "./status.js";

/** A server-streaming or bidi call, as far as the door uses it. */
export interface StreamingCall extends SurfaceCall, ChunkSink {
  readonly metadata: Metadata;
  getPath(): string;
  /** Ends the call with status OK once buffered chunks are sent. */
  end(): unknown;
  /** `emit("error", status)` ends the call with that status. */
  emit(event: "error", status: Error): boolean;
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
 * Runs one streaming call: admits it (draining, auth hook), opens the engine stream with the
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
  const scope = createCallScope(call);
  try {
    const granted = await admitCall(ctx, call.metadata, call.getPath());
    const stream = await open({ ...granted, signal: scope.signal, deadline: scope.deadline });
    await pipeToCall(call, stream, scope.signal);
    if (!call.cancelled) call.end();
  } catch (e) {
    failCall(call, e);
  } finally {
    scope.dispose();
  }
}
