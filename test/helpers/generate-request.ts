/** A minimal engine `GenerateRequest` for tests that drive the stream engine with in-test providers. */
import type { GenerateRequest } from "../../src/gen/spillway/v1/request.js";

/** One user message "x" for `model` (default `t/m`), every other field empty. */
export function generateRequest(model = "t/m"): GenerateRequest {
  return {
    model,
    messages: [{ role: "user", content: "x", parts: [], toolCalls: [], toolCallId: "", name: "", contents: [], toolError: false }],
    prompt: "",
    tools: [],
    toolChoice: "",
    stop: [],
    user: "",
    metadata: {},
    serviceTier: "",
    upstreamHeaders: {},
    parallelToolCalls: undefined,
  };
}
