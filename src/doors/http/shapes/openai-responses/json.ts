import type { Usage } from "../../../../gen/spillway/v1/chunk.js";
import { Code } from "../../../../engine/code.js";
import type { SpillwayError } from "../../../../engine/errors.js";
import type { ResponseEcho } from "./request.js";

/** `status` of an OpenAI Response object. */
export type ResponseStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

/** What identifies a Response: ids, time and model. */
export interface ResponseHead {
  /** `resp_…` */
  readonly id: string;
  /** Unix time (s). */
  readonly createdAt: number;
  /** The upstream's model name, as chat completions echo it. */
  readonly model: string;
  readonly echo: ResponseEcho;
}

/** The state of a Response that changes while it streams. */
export interface ResponseState {
  status: ResponseStatus;
  output: Array<Record<string, unknown>>;
  usage: Usage | undefined;
  error: { code: string; message: string } | null;
  incompleteReason: "max_output_tokens" | "content_filter" | undefined;
  completedAt: number | null;
}

/** OpenAI's Responses `usage` object for the engine's usage. */
export function responsesUsageJson(u: Usage): Record<string, unknown> {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedInputTokens, cache_write_tokens: 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.totalTokens,
  };
}

/**
 * The `error.code` of a failed Response: OpenAI allows only a closed set
 * there (`server_error`, `rate_limit_exceeded`, `invalid_prompt`, …), so
 * Spillway's finer codes travel in the `error` event before it instead.
 */
export function responseErrorCode(err: SpillwayError): string {
  if (err.code === Code.ResourceExhausted && err.httpStatus !== 413) return "rate_limit_exceeded";
  if (err.code === Code.InvalidArgument) return "invalid_prompt";
  return "server_error";
}

/** The whole OpenAI Response object for `head` in `state`. */
export function responseJson(head: ResponseHead, state: ResponseState): Record<string, unknown> {
  const e = head.echo;
  const out: Record<string, unknown> = {
    id: head.id,
    object: "response",
    created_at: head.createdAt,
    status: state.status,
    background: e.background,
    completed_at: state.completedAt,
    error: state.error,
    incomplete_details: state.incompleteReason ? { reason: state.incompleteReason } : null,
    instructions: e.instructions,
    max_output_tokens: e.maxOutputTokens,
    model: head.model,
    output: state.output,
    parallel_tool_calls: e.parallelToolCalls,
    previous_response_id: e.previousResponseId,
    reasoning: e.reasoning,
    store: e.store,
    temperature: e.temperature,
    text: e.text,
    tool_choice: e.toolChoice,
    tools: e.tools,
    top_p: e.topP,
    truncation: "disabled",
    metadata: e.metadata,
  };
  if (e.user !== null) out["user"] = e.user;
  if (state.usage) out["usage"] = responsesUsageJson(state.usage);
  return out;
}
