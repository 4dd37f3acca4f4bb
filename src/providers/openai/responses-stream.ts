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
import { type Obj, isObj, str, count as num, obj } from "../shared/json.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-errors.js";


/** Maps a Responses `usage` object to a usage payload. */
function mapUsage(u: Obj): ChunkPayload {
  return usagePayload({
    inputTokens: num(u["input_tokens"]),
    outputTokens: num(u["output_tokens"]),
    totalTokens: num(u["total_tokens"]),
    cachedInputTokens: num(obj(u["input_tokens_details"])["cached_tokens"]),
    reasoningTokens: num(obj(u["output_tokens_details"])["reasoning_tokens"]),
  });
}

/** A failure the upstream reported (an `error` event, or `response.failed`). */
function upstreamFailure(provider: string, e: Obj): SpillwayError {
  const code = str(e["code"]);
  const message = str(e["message"]) || "the upstream reported an error mid-stream";
  const limited = code === "rate_limit_exceeded";
  return new SpillwayError(limited ? Code.ResourceExhausted : Code.Unavailable, `${provider}: ${message}`, {
    httpStatus: limited ? 429 : 502,
    reason: code || "upstream_error",
  });
}

/** A function_call output item being streamed. */
interface Call {
  readonly index: number;
  sent: boolean;
}

/** A reasoning output item being streamed: its reasoning block index, whether text came, the summary part being streamed. */
interface ReasoningItem {
  readonly index: number;
  readonly id: string;
  sentText: boolean;
  summaryIndex: number;
}

/**
 * Translates an upstream's Responses API SSE into chunk payloads, so the
 * engine path stays the one every door uses: `output_text.delta` (and
 * refusals) become text; each `function_call` output item becomes a tool
 * call numbered in order of appearance, its `function_call_arguments.delta`s
 * the argument pieces (or the `.done` text when no delta came);
 * `response.completed` / `response.incomplete` bring usage and the finish
 * reason. Each `reasoning` output item becomes a reasoning block numbered in
 * order of appearance, carrying the item's id: `reasoning_summary_text.delta`s
 * as summary text (the parts of a summary joined by a blank line, as the
 * Responses shape reads them back), `reasoning_text.delta`s as reasoning text, and at
 * `output_item.done` its `encrypted_content` (and its summary, when no
 * delta brought it). `error` and `response.failed` fail the stream; a body that ends
 * without a terminal event is a truncation and fails too.
 */
export function responsesStreamPayloads(body: PushBody, provider: string, signal: AbortSignal | AbortSource, alive?: () => void): AsyncIterableIterator<ChunkPayload> {
  const calls = new Map<string, Call>();
  let nextIndex = 0;
  const reasoning = new Map<string, ReasoningItem>();
  let nextReasoning = 0;
  const reasoningOf = (j: Obj): ReasoningItem | undefined => reasoning.get(str(j["item_id"])) ?? reasoning.get(`#${num(j["output_index"])}`);
  const reasoningText = (j: Obj, summary: boolean, emit: (p: ChunkPayload) => void): void => {
    const r = reasoningOf(j);
    const text = str(j["delta"]);
    if (!r || !text) return;
    // A summary in several parts reads as paragraphs: a new part starts after a blank line.
    const part = summary ? num(j["summary_index"]) : r.summaryIndex;
    const lead = summary && r.sentText && part !== r.summaryIndex ? "\n\n" : "";
    r.summaryIndex = part;
    r.sentText = true;
    emit(reasoningPayload({ index: r.index, id: r.id, text: lead + text, summary }));
  };
  const callOf = (j: Obj): Call | undefined => calls.get(str(j["item_id"])) ?? calls.get(`#${num(j["output_index"])}`);
  return new SsePushStream<ChunkPayload>(
    body,
    provider,
    {
      onEvent(ev, emit) {
        if (ev.data === "[DONE]") return false;
        const j = obj(parseEventJson(ev.data, provider));
        switch (str(j["type"]) || ev.event) {
          case "response.output_text.delta":
          case "response.refusal.delta":
            if (str(j["delta"])) emit(textPayload(str(j["delta"])));
            return false;
          case "response.reasoning_summary_text.delta":
            reasoningText(j, true, emit);
            return false;
          case "response.reasoning_text.delta":
            reasoningText(j, false, emit);
            return false;
          case "response.output_item.done": {
            const item = obj(j["item"]);
            const r = item["type"] === "reasoning" ? reasoningOf({ item_id: item["id"], output_index: j["output_index"] }) : undefined;
            if (!r) return false;
            if (!r.sentText && Array.isArray(item["summary"])) {
              const text = item["summary"].map((p: unknown) => str(obj(p)["text"])).join("\n\n");
              if (text) emit(reasoningPayload({ index: r.index, id: r.id, text, summary: true }));
            }
            const encrypted = str(item["encrypted_content"]);
            if (encrypted) emit(reasoningPayload({ index: r.index, id: r.id, encrypted }));
            return false;
          }
          case "response.output_item.added": {
            const item = obj(j["item"]);
            if (item["type"] === "reasoning") {
              const r: ReasoningItem = { index: nextReasoning++, id: str(item["id"]), sentText: false, summaryIndex: 0 };
              reasoning.set(r.id, r);
              reasoning.set(`#${num(j["output_index"])}`, r);
              return false;
            }
            if (item["type"] !== "function_call") return false;
            const call: Call = { index: nextIndex++, sent: false };
            calls.set(str(item["id"]), call);
            calls.set(`#${num(j["output_index"])}`, call);
            emit(toolCallPayload({ index: call.index, id: str(item["call_id"]), name: str(item["name"]), arguments: "" }));
            return false;
          }
          case "response.function_call_arguments.delta": {
            const call = callOf(j);
            if (call && str(j["delta"])) {
              call.sent = true;
              emit(toolCallPayload({ index: call.index, id: "", name: "", arguments: str(j["delta"]) }));
            }
            return false;
          }
          case "response.function_call_arguments.done": {
            const call = callOf(j);
            if (call && !call.sent) {
              call.sent = true;
              emit(toolCallPayload({ index: call.index, id: "", name: "", arguments: str(j["arguments"]) || "{}" }));
            }
            return false;
          }
          case "response.completed":
          case "response.incomplete": {
            const r = obj(j["response"]);
            if (isObj(r["usage"])) emit(mapUsage(r["usage"]));
            const reason = str(obj(r["incomplete_details"])["reason"]);
            if (reason === "max_output_tokens") emit(finishPayload(FinishReason.REASON_LENGTH));
            else if (reason === "content_filter") emit(finishPayload(FinishReason.REASON_CONTENT_FILTER));
            else emit(finishPayload(nextIndex > 0 ? FinishReason.REASON_TOOL_CALLS : FinishReason.REASON_STOP));
            return true;
          }
          case "response.failed":
            throw upstreamFailure(provider, obj(obj(j["response"])["error"]));
          case "error":
            throw upstreamFailure(provider, isObj(j["error"]) ? j["error"] : j);
          default:
            return false;
        }
      },
      onBodyEnd() {
        throw upstreamTruncated(provider, "the response completed");
      },
      readError: (e) => streamReadError(provider, e, signal),
    },
    DEFAULT_MAX_EVENT_BYTES,
    alive,
  );
}
