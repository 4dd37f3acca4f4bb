import type { handleServerStreamingCall } from "@grpc/grpc-js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { GenerateRequest } from "../../../gen/spillway/v1/request.js";
import type { GrpcDoorContext } from "../context.js";
import { serveStream } from "../serve.js";
import { validateGenerate } from "../validation.js";

/** `Generate`: a chat or prompt → a stream of text / tool-call chunks, usage and finish last. */
export function generateHandler(ctx: GrpcDoorContext): handleServerStreamingCall<GenerateRequest, Chunk> {
  return (call) => {
    void serveStream(call, ctx, (opts) => {
      validateGenerate(call.request);
      return ctx.engine.generate(call.request, opts);
    });
  };
}
