import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import {
  finishPayload,
  FinishReason,
  reasoningPayload,
  textPayload,
  toolCallPayload,
  usagePayload,
  type ChunkPayload,
} from "../../engine/payload.js";
import type { AbortSource } from "../../engine/signals.js";
import type { PushBody } from "../shared/push-queue.js";
import { DEFAULT_MAX_EVENT_BYTES, parseEventJson } from "../shared/sse-events.js";
import { SsePushStream } from "../shared/sse-push.js";
import { type Obj, isObj, str, count as num } from "../shared/json.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-errors.js";
import { ContentTemplate } from "./content-template.js";

/** Maps OpenAI's `finish_reason` strings to the engine's enum. */
export function mapFinishReason(reason: string): FinishReason {
  switch (reason) {
    case "length":
      return FinishReason.REASON_LENGTH;
    case "tool_calls":
    case "function_call":
      return FinishReason.REASON_TOOL_CALLS;
    case "content_filter":
      return FinishReason.REASON_CONTENT_FILTER;
    default:
      return FinishReason.REASON_STOP;
  }
}


/** Maps an OpenAI `usage` object to a usage payload. */
export function mapUsage(u: Obj): ChunkPayload {
  const pd = isObj(u["prompt_tokens_details"]) ? u["prompt_tokens_details"] : {};
  const cd = isObj(u["completion_tokens_details"]) ? u["completion_tokens_details"] : {};
  return usagePayload({
    inputTokens: num(u["prompt_tokens"]),
    outputTokens: num(u["completion_tokens"]),
    totalTokens: num(u["total_tokens"]),
    cachedInputTokens: num(pd["cached_tokens"]),
    reasoningTokens: num(cd["reasoning_tokens"]),
  });
}

function inBandError(provider: string, e: unknown): SpillwayError {
  const err = isObj(e) ? e : {};
  const message = str(err["message"]) || "the upstream reported an error mid-stream";
  return new SpillwayError(Code.Unavailable, `${provider}: ${message}`, {
    httpStatus: 502,
    reason: str(err["code"]) || "upstream_error",
  });
}

/**
 * Maps a host's own fields of one streamed chunk (Azure's content filter
 * results), after the shared mapping of the same chunk; may emit payloads.
 */
export type ChatChunkHook = (chunk: Obj, emit: (p: ChunkPayload) => void) => void;

/**
 * Translates an OpenAI-style SSE body (chat completions, or legacy
 * completions when `legacy` is set) into chunk payloads: content as text,
 * `delta.reasoning_content` / `delta.reasoning` (the reasoning
 * OpenAI-compatible servers stream) as one reasoning block, tool calls,
 * usage with `completion_tokens_details.reasoning_tokens`. A body that ends
 * with neither `[DONE]` nor a `finish_reason` is a truncation and fails the
 * stream; so do malformed events and in-band `error` objects. Events are
 * mapped synchronously as the socket delivers them ({@link SsePushStream}).
 */
export function openAiStreamPayloads(
  body: PushBody,
  provider: string,
  signal: AbortSignal | AbortSource,
  legacy: boolean,
  alive?: () => void,
  onChunk?: ChatChunkHook,
): AsyncIterableIterator<ChunkPayload> {
  let finished = false;
  // Pure content chunks of servers that send them with the same bytes around the content: read without JSON.parse.
  // Not with a hook (it reads every chunk), nor for legacy completions; learned at most twice per stream, so a server
  // whose chunks all differ (OpenAI's `obfuscation`) pays for two tries only.
  let template: ContentTemplate | undefined;
  let learning = onChunk || legacy ? 0 : 2;
  return new SsePushStream<ChunkPayload>(body, provider, {
    onEvent(ev, emit) {
      if (template && ev.event === undefined) {
        const text = template.match(ev.data);
        if (text !== undefined) {
          if (text) emit(textPayload(text));
          return false;
        }
      }
      if (ev.data === "[DONE]") return true;
      const j = parseEventJson(ev.data, provider);
      if (!isObj(j)) throw inBandError(provider, { message: "upstream sent a non-object event" });
      if (ev.event === "error" || j["error"] !== undefined) throw inBandError(provider, j["error"] ?? j);
      const choices = j["choices"];
      const c: unknown = Array.isArray(choices) ? choices[0] : undefined;
      if (isObj(c)) {
        if (legacy) {
          const text = str(c["text"]);
          if (text) emit(textPayload(text));
        } else if (isObj(c["delta"])) {
          const d = c["delta"];
          // DeepSeek, vLLM (before 0.10) and others: `reasoning_content`; OpenRouter, Ollama, newer vLLM: `reasoning`.
          const reasoning = str(d["reasoning_content"]) || str(d["reasoning"]);
          if (reasoning) emit(reasoningPayload({ text: reasoning }));
          const content = str(d["content"]);
          if (content) emit(textPayload(content));
          if (learning > 0 && content && ev.event === undefined && c["finish_reason"] == null && j["usage"] == null && Object.keys(d).length === 1) {
            learning--;
            template = ContentTemplate.learn(ev.data, content) ?? template;
          }
          const calls = d["tool_calls"];
          if (Array.isArray(calls)) {
            for (const tc of calls as unknown[]) {
              if (!isObj(tc)) continue;
              const fn = isObj(tc["function"]) ? tc["function"] : {};
              emit(
                toolCallPayload({
                  index: num(tc["index"]),
                  id: str(tc["id"]),
                  name: str(fn["name"]),
                  arguments: str(fn["arguments"]),
                }),
              );
            }
          }
        }
        const reason = str(c["finish_reason"]);
        if (reason) {
          finished = true;
          // vLLM names the stop string that matched in `stop_reason` (a number when it was a stop token).
          emit(finishPayload(mapFinishReason(reason), reason === "stop" ? str(c["stop_reason"]) : ""));
        }
      }
      if (isObj(j["usage"])) emit(mapUsage(j["usage"]));
      onChunk?.(j, emit);
      return false;
    },
    onBodyEnd() {
      if (!finished) throw upstreamTruncated(provider, "it finished");
    },
    // A method, not an arrow property: under tsx (esbuild keepNames) a named arrow made per stream pays an Object.defineProperty.
    readError(e) {
      return streamReadError(provider, e, signal);
    },
  }, DEFAULT_MAX_EVENT_BYTES, alive);
}
