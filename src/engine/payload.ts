import {
  Finish_Reason,
  type Chunk,
  type ReasoningDelta,
  type ToolCallDelta,
  type Usage,
} from "../gen/spillway/v1/chunk.js";

/** What a provider yields: a chunk's payload; the engine adds stream id and seq. */
export type ChunkPayload = NonNullable<Chunk["payload"]>;

/** A text-delta payload. */
export function textPayload(text: string): ChunkPayload {
  return { $case: "text", value: { text } };
}

/** A tool-call-delta payload. */
export function toolCallPayload(delta: ToolCallDelta): ChunkPayload {
  return { $case: "toolCall", value: delta };
}

/** A usage payload; missing counts are 0 and `totalTokens` is derived when absent. */
export function usagePayload(u: Partial<Usage>): ChunkPayload {
  const inputTokens = u.inputTokens ?? 0;
  const outputTokens = u.outputTokens ?? 0;
  return {
    $case: "usage",
    value: {
      inputTokens,
      outputTokens,
      totalTokens: u.totalTokens || inputTokens + outputTokens,
      cachedInputTokens: u.cachedInputTokens ?? 0,
      reasoningTokens: u.reasoningTokens ?? 0,
      inputAudioSeconds: u.inputAudioSeconds ?? 0,
      outputAudioSeconds: u.outputAudioSeconds ?? 0,
    },
  };
}

/** A finish payload; `stopSequence` names the stop sequence that ended the output, when known. */
export function finishPayload(reason: Finish_Reason, stopSequence = ""): ChunkPayload {
  return { $case: "finish", value: { reason, stopSequence } };
}

/** A reasoning-delta payload; fields not given are empty (block 0). */
export function reasoningPayload(d: Partial<ReasoningDelta>): ChunkPayload {
  return { $case: "reasoning", value: { text: "", signature: "", encrypted: "", summary: false, index: 0, id: "", ...d } };
}

/** An empty usage record. */
export function emptyUsage(): Usage {
  return {
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    cachedInputTokens: 0,
    reasoningTokens: 0,
    inputAudioSeconds: 0,
    outputAudioSeconds: 0,
  };
}

/**
 * Folds `b` into `a` by taking the larger of each count: upstreams report
 * usage in several pieces, each cumulative (Anthropic's `message_start`
 * then `message_delta`), so the largest value seen is the total.
 */
export function maxUsage(a: Usage, b: Usage): void {
  a.inputTokens = Math.max(a.inputTokens, b.inputTokens);
  a.outputTokens = Math.max(a.outputTokens, b.outputTokens);
  a.cachedInputTokens = Math.max(a.cachedInputTokens, b.cachedInputTokens);
  a.reasoningTokens = Math.max(a.reasoningTokens, b.reasoningTokens);
  a.inputAudioSeconds = Math.max(a.inputAudioSeconds, b.inputAudioSeconds);
  a.outputAudioSeconds = Math.max(a.outputAudioSeconds, b.outputAudioSeconds);
  a.totalTokens = Math.max(b.totalTokens, a.inputTokens + a.outputTokens);
}

export { Finish_Reason as FinishReason };
