/** A minimal engine `GenerateRequest` for tests that drive the stream engine with in-test providers. */
import type { GenerateRequest } from "../../src/gen/spillway/v1/request.js";
import { generateRequest as fullRequest } from "./grpc.js";

/** One user message "x" for `model` (default `t/m`), every other field empty (the gRPC helper's request). */
export function generateRequest(model = "t/m"): GenerateRequest {
  return fullRequest(model, "x");
}
