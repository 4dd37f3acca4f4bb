import type { handleServerStreamingCall } from "@grpc/grpc-js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { SynthesizeRequest } from "../../../gen/spillway/v1/request.js";
import type { GrpcDoorContext } from "../context.js";
import { serveStream } from "../serve.js";
import { validateSynthesize } from "../validation.js";

/** `Synthesize`: text → a stream of audio chunks as they are made, usage and finish last. */
export function synthesizeHandler(ctx: GrpcDoorContext): handleServerStreamingCall<SynthesizeRequest, Chunk> {
  return (call) => {
    void serveStream(call, ctx, (opts) => {
      validateSynthesize(call.request);
      return ctx.engine.synthesize(call.request, opts);
    });
  };
}
