import type { handleServerStreamingCall } from "@grpc/grpc-js";
import { Code } from "../../../engine/code.js";
import { ownerOf } from "../../../engine/durable/durable-streams.js";
import { SpillwayError, invalidArgument } from "../../../engine/errors.js";
import type { Chunk } from "../../../gen/spillway/v1/chunk.js";
import type { AttachRequest } from "../../../gen/spillway/v1/request.js";
import { admitCall } from "../auth.js";
import { createCallScope } from "../call-scope.js";
import type { GrpcDoorContext } from "../context.js";
import { pipeChunks } from "../pipe.js";
import { failCall } from "../serve.js";

/**
 * `Attach`: a stored stream's chunks after `after_seq` (all when absent),
 * then live ones until its terminal chunk — the same replay-then-follow as
 * the HTTP resumes, over the same log. NOT_FOUND for an unknown stream and
 * for another key's (not revealing that it exists); INVALID_ARGUMENT for a
 * malformed `stream_id`. The client leaving stops only this reader.
 */
export function attachHandler(ctx: GrpcDoorContext): handleServerStreamingCall<AttachRequest, Chunk> {
  return (call) => {
    void (async () => {
      const scope = createCallScope(call);
      ctx.active.calls++;
      try {
        const granted = await admitCall(ctx, call.metadata, call.getPath());
        const id = call.request.streamId.startsWith("resp_") ? call.request.streamId.slice(5) : call.request.streamId;
        if (!/^[0-9a-f]{32}$/.test(id)) throw invalidArgument(`Invalid 'stream_id': expected a stream id (32 hex digits, or 'resp_' and them), got '${call.request.streamId}'.`, "stream_id");
        const record = await ctx.engine.streams.get(id, ownerOf(granted.principal));
        if (!record) throw new SpillwayError(Code.NotFound, `No stored stream '${call.request.streamId}'.`, { reason: "not_found", param: "stream_id" });
        const after = call.request.afterSeq ?? -1;
        const chunks = (async function* () {
          for await (const { chunk } of ctx.engine.streams.follow(id, after, scope.signal)) yield chunk;
        })();
        await pipeChunks(call, chunks, scope.signal);
        if (!call.cancelled) call.end();
      } catch (e) {
        failCall(call, e);
      } finally {
        ctx.active.calls--;
        scope.dispose();
      }
    })();
  };
}
