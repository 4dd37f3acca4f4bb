import type { handleServerStreamingCall } from "@grpc/grpc-js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { GenerateRequest } from "../../../gen/spillway/v1/request.js";
import type { GrpcDoorContext } from "../context.js";
import { serveStream } from "../serve.js";
import { validateGenerate } from "../validation.js";
import { phaseTraceActive, tracePhase, TracePhase } from "../../../observability/phase-trace.js";
import { directSink } from "../write-coalescing.js";
import { RESUMABLE_METADATA, serveResumableGenerate } from "./attach.js";

/**
 * `Generate`: a chat or prompt → a stream of text / tool-call chunks, usage
 * and finish last. With `x-spillway-resumable: true` metadata the stream is
 * stored and runs on if the call is lost (resume with `Attach`).
 */
export function generateHandler(ctx: GrpcDoorContext): handleServerStreamingCall<GenerateRequest, Chunk> {
  return (call) => {
    // Keyed by the door's call (as its arrival and first chunk) only while something listens: the lookup is not free.
    tracePhase(TracePhase.BodyRead, phaseTraceActive() ? directSink(call.metadata) : undefined, "grpc");
    if (call.metadata.get(RESUMABLE_METADATA)[0] === "true") return serveResumableGenerate(call, ctx, () => validateGenerate(call.request));
    void serveStream(call, ctx, (opts) => {
      validateGenerate(call.request);
      tracePhase(TracePhase.Validated);
      return ctx.engine.generate(call.request, opts);
    });
  };
}
