import type { SpillwayError } from "../../../../engine/errors.js";
import { sseData } from "../../sse.js";
import { openAiErrorObject } from "./errors.js";
import { Finish_Reason, type Usage } from "../../../../gen/spillway/v1/chunk.js";

/** OpenAI's `finish_reason` for the engine's reason. */
export function finishReasonText(r: Finish_Reason): "stop" | "length" | "tool_calls" | "content_filter" {
  switch (r) {
    case Finish_Reason.REASON_LENGTH:
      return "length";
    case Finish_Reason.REASON_TOOL_CALLS:
      return "tool_calls";
    case Finish_Reason.REASON_CONTENT_FILTER:
      return "content_filter";
    default:
      return "stop";
  }
}

/** OpenAI's `usage` object (chat and completions) for the engine's usage. */
export function usageJson(u: Usage): Record<string, unknown> {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: { cached_tokens: u.cachedInputTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

/** The SSE terminator OpenAI's chat, completion and audio streams end with. */
export const SSE_DONE = "data: [DONE]\n\n";

/** The in-band SSE error frame: OpenAI's error object under `error` (after `extra`, e.g. `"type":"error",`). */
export function sseErrorFrame(err: SpillwayError, extra = ""): string {
  return sseData(`{${extra}"error":${JSON.stringify(openAiErrorObject(err))}}`);
}
