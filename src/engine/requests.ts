import type { GenerateRequest, Message } from "../gen/spillway/v1/request.js";

/**
 * A {@link Message} with every field not given at its empty default, so that
 * code building messages names only what it sets (the generated interface
 * makes every scalar and list required).
 */
export function makeMessage(m: Partial<Message> & Pick<Message, "role">): Message {
  return { content: "", parts: [], toolCalls: [], toolCallId: "", name: "", contents: [], toolError: false, ...m };
}

/** A {@link GenerateRequest} with every field not given at its empty default. */
export function makeGenerateRequest(r: Partial<GenerateRequest> & Pick<GenerateRequest, "model">): GenerateRequest {
  return {
    messages: [],
    prompt: "",
    tools: [],
    toolChoice: "",
    stop: [],
    user: "",
    metadata: {},
    serviceTier: "",
    upstreamHeaders: {},
    ...r,
  };
}
