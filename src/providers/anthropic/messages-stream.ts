import {
  finishPayload,
  FinishReason,
  textPayload,
  toolCallPayload,
  usagePayload,
  type ChunkPayload,
} from "../../engine/payload.js";
import { parseEventJson, readSseEvents } from "../shared/sse-reader.js";
import { anthropicError } from "./errors.js";
import { type Obj, isObj, str, count as num } from "../shared/json.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-http.js";

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
function mapUsage(u: Obj): ChunkPayload {
  const cacheRead = num(u["cache_read_input_tokens"]);
  const cacheWrite = num(u["cache_creation_input_tokens"]);
  return usagePayload({
    inputTokens: num(u["input_tokens"]) + cacheRead + cacheWrite,
    outputTokens: num(u["output_tokens"]),
    cachedInputTokens: cacheRead,
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
 * Thinking blocks and unknown events are skipped, as Anthropic's versioning
 * policy asks. An `error` event fails the stream with the mapped error (the
 * engine makes it in-band once content has flowed); a body that ends before
 * `message_stop` is a truncation and fails too.
 */
export async function* anthropicStreamPayloads(
  body: AsyncIterable<Uint8Array>,
  provider: string,
  signal: AbortSignal,
): AsyncGenerator<ChunkPayload> {
  const tools = new Map<number, ToolBlock>();
  let stopped = false;
  try {
    for await (const ev of readSseEvents(body, provider)) {
      if (ev.event === "ping") continue;
      const j = parseEventJson(ev.data, provider);
      if (!isObj(j)) continue;
      const type = str(j["type"]) || ev.event || "";
      switch (type) {
        case "message_start": {
          const usage = isObj(j["message"]) ? j["message"]["usage"] : undefined;
          if (isObj(usage)) yield mapUsage(usage);
          break;
        }
        case "content_block_start": {
          const block = isObj(j["content_block"]) ? j["content_block"] : {};
          if (block["type"] === "text" && str(block["text"])) yield textPayload(str(block["text"]));
          if (block["type"] === "tool_use") {
            const t: ToolBlock = { index: tools.size, hasArguments: false };
            tools.set(num(j["index"]), t);
            yield toolCallPayload({ index: t.index, id: str(block["id"]), name: str(block["name"]), arguments: "" });
          }
          break;
        }
        case "content_block_delta": {
          const d = isObj(j["delta"]) ? j["delta"] : {};
          if (d["type"] === "text_delta" && str(d["text"])) yield textPayload(str(d["text"]));
          if (d["type"] === "input_json_delta") {
            const t = tools.get(num(j["index"]));
            const piece = str(d["partial_json"]);
            if (t && piece) {
              t.hasArguments = true;
              yield toolCallPayload({ index: t.index, id: "", name: "", arguments: piece });
            }
          }
          break;
        }
        case "content_block_stop": {
          const t = tools.get(num(j["index"]));
          if (t && !t.hasArguments) {
            t.hasArguments = true;
            yield toolCallPayload({ index: t.index, id: "", name: "", arguments: "{}" });
          }
          break;
        }
        case "message_delta": {
          const d = isObj(j["delta"]) ? j["delta"] : {};
          if (isObj(j["usage"])) yield mapUsage(j["usage"]);
          const reason = str(d["stop_reason"]);
          if (reason) yield finishPayload(mapStopReason(reason));
          break;
        }
        case "message_stop":
          stopped = true;
          break;
        case "error": {
          const e = isObj(j["error"]) ? j["error"] : {};
          throw anthropicError(provider, str(e["type"]), str(e["message"]) || "the upstream reported an error mid-stream");
        }
        default:
          break;
      }
      if (stopped) break;
    }
  } catch (e) {
    throw streamReadError(provider, e, signal);
  }
  if (!stopped) {
    throw upstreamTruncated(provider, "message_stop");
  }
}
