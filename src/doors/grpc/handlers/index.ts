import type { SpillwayServiceServer } from "../../../gen/spillway/v1/service.js";
import type { GrpcDoorContext } from "../context.js";
import { attachHandler } from "./attach.js";
import { generateHandler } from "./generate.js";
import { listModelsHandler } from "./list-models.js";
import { synthesizeHandler } from "./synthesize.js";
import { transcribeHandler } from "./transcribe.js";

/** The implementation of `spillway.v1.SpillwayService`: one handler per RPC. */
export function createSpillwayService(ctx: GrpcDoorContext): SpillwayServiceServer {
  return {
    generate: generateHandler(ctx),
    synthesize: synthesizeHandler(ctx),
    transcribe: transcribeHandler(ctx),
    listModels: listModelsHandler(ctx),
    attach: attachHandler(ctx),
  };
}
