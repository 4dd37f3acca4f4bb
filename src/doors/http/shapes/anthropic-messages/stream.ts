import { Finish_Reason, type Chunk, type Finish, type Usage } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { sseEvent, type StreamEncoder } from "../../sse.js";
import { anthropicShape } from "./shape.js";

/** Anthropic's `stop_reason` for the engine's finish; a plain stop after tool calls is `tool_use` (some OpenAI-compatible servers say `stop`). */
export function stopReason(f: Finish, sawToolUse: boolean): "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal" {
  switch (f.reason) {
    case Finish_Reason.REASON_LENGTH:
      return "max_tokens";
    case Finish_Reason.REASON_TOOL_CALLS:
      return "tool_use";
    case Finish_Reason.REASON_CONTENT_FILTER:
      return "refusal";
    default:
      if (f.stopSequence) return "stop_sequence";
      return sawToolUse ? "tool_use" : "end_turn";
  }
}

/**
 * Anthropic's usage counters for the engine's usage. The engine counts
 * cached prompt tokens inside `input_tokens` (as OpenAI does); Anthropic
 * counts them apart, so cache reads are taken out again. Cache writes are
 * not told apart by the engine and stay in `input_tokens`.
 */
export function anthropicUsage(u: Usage): { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number } {
  return {
    input_tokens: Math.max(0, u.inputTokens - u.cachedInputTokens),
    output_tokens: u.outputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.cachedInputTokens,
  };
}

/** Keep-alive settings: a `ping` event after `message_start`, then one whenever this long passed with nothing sent. */
export const PING = { intervalMs: 10_000 };

/** The `ping` event. */
export const PING_EVENT = sseEvent("ping", `{"type":"ping"}`);

type OpenBlock =
  | { readonly kind: "text"; readonly index: number }
  | { readonly kind: "thinking"; readonly index: number; readonly reasoning: number }
  | { readonly kind: "tool"; readonly index: number; readonly tool: number };

/**
 * Encodes a stream as Anthropic's Messages SSE, every event with its
 * `event:` line (the SDKs drop events without one): `message_start` (see
 * {@link AnthropicSseEncoder.start}), then per content block
 * `content_block_start`, its deltas (`text_delta`, `thinking_delta` +
 * `signature_delta`, `input_json_delta`) and `content_block_stop`, blocks
 * numbered from 0 with no gaps and one open at a time; then
 * `message_delta` (stop reason, stop sequence, usage with `input_tokens` as
 * well, since the engine reports usage only at the end) and `message_stop`.
 * A reasoning chunk with opaque `encrypted` data is a `redacted_thinking`
 * block (started and stopped at once). A failure after the first byte is
 * an `event: error` frame, as Anthropic sends it (open blocks stay open).
 * Parallel tool calls: the first streams live as its `tool_use` block; a
 * call that starts while it is open is held and sent whole (start, one
 * `input_json_delta`, stop) when the open block ends, so blocks never
 * interleave even when an upstream interleaves the calls' pieces.
 */
export class AnthropicSseEncoder implements StreamEncoder {
  private next = 0;
  private open: OpenBlock | undefined;
  /** Engine tool-call index → block index, for calls whose block was started. */
  private readonly tools = new Map<number, number>();
  /** Calls that started while another call's block was open. */
  private readonly held: Array<{ tool: number; id: string; name: string; args: string }> = [];
  private usage: Usage | undefined;
  private sawToolUse = false;
  /** Events written so far (the keep-alive timer pings when it has not moved). */
  sent = 0;
  /** True once `message_stop` or `error` was written. */
  done = false;

  constructor(
    private readonly stream: EngineStream,
    /** The gateway's estimate of the prompt's tokens, for `message_start` (the real figure comes in `message_delta`). */
    private readonly inputEstimate: number,
  ) {}

  /** `message_start` (an empty assistant message with the estimated input usage) and the first `ping`. */
  start(): string {
    this.sent++;
    const message = {
      id: `msg_${this.stream.id}`,
      type: "message",
      role: "assistant",
      model: this.stream.route.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.inputEstimate, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    return sseEvent("message_start", JSON.stringify({ type: "message_start", message })) + PING_EVENT;
  }

  /** Ends the open block; after a tool block, the calls held meanwhile follow, each whole. */
  private close(): string {
    const o = this.open;
    if (!o) return "";
    this.open = undefined;
    let out = sseEvent("content_block_stop", `{"type":"content_block_stop","index":${o.index}}`);
    if (o.kind !== "tool") return out;
    for (const h of this.held.splice(0)) {
      const index = this.next++;
      this.tools.set(h.tool, index);
      out += sseEvent("content_block_start", `{"type":"content_block_start","index":${index},"content_block":${JSON.stringify({ type: "tool_use", id: h.id, name: h.name, input: {} })}}`);
      if (h.args) out += this.delta(index, `{"type":"input_json_delta","partial_json":${JSON.stringify(h.args)}}`);
      out += sseEvent("content_block_stop", `{"type":"content_block_stop","index":${index}}`);
    }
    return out;
  }

  private begin(block: OpenBlock, contentBlock: unknown): string {
    const out = this.close();
    this.open = block;
    return out + sseEvent("content_block_start", `{"type":"content_block_start","index":${block.index},"content_block":${JSON.stringify(contentBlock)}}`);
  }

  private delta(index: number, delta: string): string {
    return sseEvent("content_block_delta", `{"type":"content_block_delta","index":${index},"delta":${delta}}`);
  }

  encode(chunk: Chunk): string {
    const out = this.encodePayload(chunk);
    if (out) this.sent++;
    return out;
  }

  private encodePayload(chunk: Chunk): string {
    const p = chunk.payload;
    switch (p?.$case) {
      case "text": {
        if (!p.value.text) return "";
        let out = "";
        if (this.open?.kind !== "text") out = this.begin({ kind: "text", index: this.next++ }, { type: "text", text: "" });
        return out + this.delta(this.open!.index, `{"type":"text_delta","text":${JSON.stringify(p.value.text)}}`);
      }
      case "reasoning": {
        const r = p.value;
        let out = "";
        if (r.encrypted && !r.id) {
          out += this.begin({ kind: "thinking", index: this.next++, reasoning: -1 }, { type: "redacted_thinking", data: r.encrypted });
          out += this.close();
        }
        if (!r.text && !r.signature) return out;
        const o = this.open;
        if (o?.kind !== "thinking" || o.reasoning !== r.index) {
          out += this.begin({ kind: "thinking", index: this.next++, reasoning: r.index }, { type: "thinking", thinking: "", signature: "" });
        }
        const index = this.open!.index;
        if (r.text) out += this.delta(index, `{"type":"thinking_delta","thinking":${JSON.stringify(r.text)}}`);
        if (r.signature) out += this.delta(index, `{"type":"signature_delta","signature":${JSON.stringify(r.signature)}}`);
        return out;
      }
      case "toolCall": {
        const t = p.value;
        const held = this.held.find((h) => h.tool === t.index);
        if (held) {
          held.args += t.arguments;
          return "";
        }
        const index = this.tools.get(t.index);
        if (index !== undefined) return t.arguments ? this.delta(index, `{"type":"input_json_delta","partial_json":${JSON.stringify(t.arguments)}}`) : "";
        this.sawToolUse = true;
        const id = t.id || `toolu_${this.stream.id}_${t.index}`;
        if (this.open?.kind === "tool") {
          // Another call while one streams: held, and sent whole when the streaming one ends.
          this.held.push({ tool: t.index, id, name: t.name, args: t.arguments });
          return "";
        }
        const block = this.next++;
        this.tools.set(t.index, block);
        let out = this.begin({ kind: "tool", index: block, tool: t.index }, { type: "tool_use", id, name: t.name, input: {} });
        if (t.arguments) out += this.delta(block, `{"type":"input_json_delta","partial_json":${JSON.stringify(t.arguments)}}`);
        return out;
      }
      case "usage":
        this.usage = p.value;
        return "";
      case "finish": {
        this.done = true;
        const reason = stopReason(p.value, this.sawToolUse);
        const delta = { stop_reason: reason, stop_sequence: reason === "stop_sequence" ? p.value.stopSequence : null };
        const usage = this.usage ? anthropicUsage(this.usage) : { input_tokens: this.inputEstimate, output_tokens: 0 };
        return (
          this.close() +
          sseEvent("message_delta", JSON.stringify({ type: "message_delta", delta, usage })) +
          sseEvent("message_stop", `{"type":"message_stop"}`)
        );
      }
      case "error":
        this.done = true;
        return anthropicShape.streamError(SpillwayError.fromChunkError(p.value));
      default:
        return "";
    }
  }
}
