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
import { anthropicError } from "./errors.js";
import { type Obj, isObj, obj, str, count as num } from "../shared/json.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-errors.js";

/** Maps Anthropic's `stop_reason` to the engine's finish reason. */
export function mapStopReason(reason: string): FinishReason {
  switch (reason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return FinishReason.REASON_LENGTH;
    case "tool_use":
      return FinishReason.REASON_TOOL_CALLS;
    case "refusal":
      return FinishReason.REASON_CONTENT_FILTER;
    default:
      // end_turn, stop_sequence, pause_turn
      return FinishReason.REASON_STOP;
  }
}


/**
 * Maps Anthropic usage to a usage payload. Anthropic counts cached prompt
 * tokens apart from `input_tokens`; OpenAI's input count includes them, so
 * they are added back in, with cache reads as `cachedInputTokens`.
 */
export function mapUsage(u: Obj): ChunkPayload {
  const cacheRead = num(u["cache_read_input_tokens"]);
  const cacheWrite = num(u["cache_creation_input_tokens"]);
  return usagePayload({
    inputTokens: num(u["input_tokens"]) + cacheRead + cacheWrite,
    outputTokens: num(u["output_tokens"]),
    cachedInputTokens: cacheRead,
    reasoningTokens: num(obj(u["output_tokens_details"])["thinking_tokens"]),
  });
}

/** A tool_use block being streamed: its tool-call index and whether it has arguments yet. */
interface ToolBlock {
  readonly index: number;
  hasArguments: boolean;
}

/**
 * Translates Anthropic's Messages SSE (`message_start`,
 * `content_block_start/delta/stop`, `message_delta`, `message_stop`, `ping`,
 * `error`) into chunk payloads. Text blocks become text deltas; each
 * `tool_use` block becomes a tool call numbered in order of appearance, its
 * `input_json_delta`s the argument pieces (a call with no input gets `{}`).
 * Each `thinking` block becomes a reasoning block numbered in order of
 * appearance among the reasoning blocks (its `thinking_delta`s the text,
 * its `signature_delta` the signature), each `redacted_thinking` block one
 * with its data as `encrypted`. The stop sequence that ended the output
 * (`stop_reason: stop_sequence`) rides on the finish. Unknown blocks and
 * events are skipped, as Anthropic's versioning policy asks. An `error` event fails the stream with the mapped error (the
 * engine makes it in-band once content has flowed); a body that ends before
 * `message_stop` is a truncation and fails too. Events are mapped as the
 * socket delivers them ({@link SsePushStream}); `ping`s call `alive`, so a
 * long wait with pings is not a timeout.
 */
export function anthropicStreamPayloads(body: PushBody, provider: string, signal: AbortSignal | AbortSource, alive?: () => void): AsyncIterableIterator<ChunkPayload> {
  const tools = new Map<number, ToolBlock>();
  /** Anthropic block index → reasoning block index. */
  const thinking = new Map<number, number>();
  return new SsePushStream<ChunkPayload>(body, provider, {
    onEvent(ev, emit) {
      if (ev.event === "ping") return false;
      const j = parseEventJson(ev.data, provider);
      if (!isObj(j)) return false;
      const type = str(j["type"]) || ev.event || "";
      switch (type) {
        case "message_start": {
          const usage = isObj(j["message"]) ? j["message"]["usage"] : undefined;
          if (isObj(usage)) emit(mapUsage(usage));
          return false;
        }
        case "content_block_start": {
          const block = isObj(j["content_block"]) ? j["content_block"] : {};
          if (block["type"] === "text" && str(block["text"])) emit(textPayload(str(block["text"])));
          if (block["type"] === "thinking" || block["type"] === "redacted_thinking") {
            const index = thinking.size;
            thinking.set(num(j["index"]), index);
            const text = str(block["thinking"]);
            const signature = str(block["signature"]);
            const encrypted = str(block["data"]);
            if (text || signature || encrypted) emit(reasoningPayload({ index, text, signature, encrypted }));
          }
          if (block["type"] === "tool_use") {
            const t: ToolBlock = { index: tools.size, hasArguments: false };
            tools.set(num(j["index"]), t);
            emit(toolCallPayload({ index: t.index, id: str(block["id"]), name: str(block["name"]), arguments: "" }));
          }
          return false;
        }
        case "content_block_delta": {
          const d = isObj(j["delta"]) ? j["delta"] : {};
          if (d["type"] === "text_delta" && str(d["text"])) emit(textPayload(str(d["text"])));
          if (d["type"] === "thinking_delta" || d["type"] === "signature_delta") {
            const index = thinking.get(num(j["index"]));
            const text = str(d["thinking"]);
            const signature = str(d["signature"]);
            if (index !== undefined && (text || signature)) emit(reasoningPayload({ index, text, signature }));
          }
          if (d["type"] === "input_json_delta") {
            const t = tools.get(num(j["index"]));
            const piece = str(d["partial_json"]);
            if (t && piece) {
              t.hasArguments = true;
              emit(toolCallPayload({ index: t.index, id: "", name: "", arguments: piece }));
            }
          }
          return false;
        }
        case "content_block_stop": {
          const t = tools.get(num(j["index"]));
          if (t && !t.hasArguments) {
            t.hasArguments = true;
            emit(toolCallPayload({ index: t.index, id: "", name: "", arguments: "{}" }));
          }
          return false;
        }
        case "message_delta": {
          const d = isObj(j["delta"]) ? j["delta"] : {};
          if (isObj(j["usage"])) emit(mapUsage(j["usage"]));
          const reason = str(d["stop_reason"]);
          if (reason) emit(finishPayload(mapStopReason(reason), reason === "stop_sequence" ? str(d["stop_sequence"]) : ""));
          return false;
        }
        case "message_stop":
          return true;
        case "error": {
          const e = isObj(j["error"]) ? j["error"] : {};
          throw anthropicError(provider, str(e["type"]), str(e["message"]) || "the upstream reported an error mid-stream");
        }
        default:
          return false;
      }
    },
    onBodyEnd() {
      throw upstreamTruncated(provider, "message_stop");
    },
    readError: (e) => streamReadError(provider, e, signal),
  }, DEFAULT_MAX_EVENT_BYTES, alive);
}
