import type { handleUnaryCall } from "@grpc/grpc-js";
import type { ListModelsRequest, ListModelsResponse } from "../../../gen/spillway/v1/request.js";
import { admitCall } from "../auth.js";
import { createCallScope } from "../call-scope.js";
import type { GrpcDoorContext } from "../context.js";
import { toGrpcError } from "../status.js";

/** `ListModels` (unary): every model of every provider, with what it can do and whether it is available. */
export function listModelsHandler(ctx: GrpcDoorContext): handleUnaryCall<ListModelsRequest, ListModelsResponse> {
  return (call, callback) => {
    const scope = createCallScope(call, ctx.inFlight);
    void (async () => {
      try {
        await admitCall(ctx, call.metadata, call.getPath());
        callback(null, { models: await ctx.engine.listModels(scope.signal) });
      } catch (e) {
        callback(toGrpcError(e));
      } finally {
        scope.dispose();
      }
    })();
  };
}
