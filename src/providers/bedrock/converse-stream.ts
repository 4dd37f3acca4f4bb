import type { AbortSource } from "../../engine/signals.js";
import type { PushBody } from "../shared/push-queue.js";
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
import { EventStreamPushStream, type EventStreamMessage } from "../shared/event-stream-push.js";
import { type Obj, count, isObj, obj, str } from "../shared/json.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-errors.js";
import { bedrockError } from "./errors.js";

/** Maps Converse's `stopReason` to the engine's finish reason. */
export function mapStopReason(reason: string): FinishReason {
  switch (reason) {
    case "tool_use":
      return FinishReason.REASON_TOOL_CALLS;
    case "max_tokens":
    case "model_context_window_exceeded":
      return FinishReason.REASON_LENGTH;
    case "guardrail_intervened":
    case "content_filtered":
      return FinishReason.REASON_CONTENT_FILTER;
    default:
      return FinishReason.REASON_STOP;
  }
}

/** Maps Converse's `usage` (`metadata` event, or the `/converse` answer) to a usage payload. */
export function mapConverseUsage(u: Obj): ChunkPayload {
  const cacheRead = count(u["cacheReadInputTokens"]);
  const cacheWrite = count(u["cacheWriteInputTokens"]);
  // Bedrock's inputTokens leave out cached tokens; the engine's input count includes them.
  const input = count(u["inputTokens"]) + cacheRead + cacheWrite;
  return usagePayload({ inputTokens: input, outputTokens: count(u["outputTokens"]), cachedInputTokens: cacheRead });
}

/** The stop sequence Claude reports in `additionalModelResponseFields`, when any. */
export function stopSequenceOf(fields: unknown): string {
  return str(obj(fields)["stop_sequence"]);
}

function malformed(provider: string, what: string): SpillwayError {
  return new SpillwayError(Code.DataLoss, `${provider}: upstream sent ${what}`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
}

/** What one content block of the answer is. */
type Block = { kind: "text" } | { kind: "tool"; index: number } | { kind: "json" } | { kind: "reasoning" };

/**
 * The Converse stream state machine: one `converse-stream` event-stream
 * message in, chunk payloads out.
 * - `contentBlockIndex` counts every block (text, reasoning, tool), while a
 *   tool call's index is its position among the tool calls only (a call at
 *   block 1 after a text preamble is tool call 0). A text or reasoning delta
 *   may come without a `contentBlockStart`.
 * - `toolUse` input arrives as JSON fragments, passed on as argument deltas;
 *   the first delta of a call (at `contentBlockStart`) carries id and name.
 * - The tool standing for JSON output (`jsonTool`) is streamed as text.
 * - `messageStop` comes before `metadata` (usage): the finish is held until
 *   `metadata`, the stream's last message. A body that ends before it is a
 *   truncation.
 * - `:message-type: exception` frames (throttlingException,
 *   validationException, modelStreamErrorException, …) and `error` frames
 *   fail the stream with the matching code.
 */
export class ConverseStreamMapper {
  private readonly blocks = new Map<number, Block>();
  private tools = 0;
  private stop: { reason: string; sequence: string } | undefined;
  private ended = false;

  constructor(
    private readonly provider: string,
    private readonly jsonTool: string | undefined,
  ) {}

  /** Maps one message; true when it was the last (`metadata` after `messageStop`). */
  onMessage(msg: EventStreamMessage, emit: (p: ChunkPayload) => void): boolean {
    const type = msg.headers[":message-type"];
    if (type === "exception") {
      const j = this.payload(msg);
      throw bedrockError(this.provider, String(msg.headers[":exception-type"] ?? ""), str(j["message"]) || str(j["Message"]));
    }
    if (type === "error") {
      throw bedrockError(this.provider, String(msg.headers[":error-code"] ?? ""), String(msg.headers[":error-message"] ?? ""));
    }
    if (type !== "event") return false;
    const j = this.payload(msg);
    switch (msg.headers[":event-type"]) {
      case "contentBlockStart":
        this.onStart(count(j["contentBlockIndex"]), obj(j["start"]), emit);
        return false;
      case "contentBlockDelta":
        this.onDelta(count(j["contentBlockIndex"]), obj(j["delta"]), emit);
        return false;
      case "messageStop":
        this.stop = { reason: str(j["stopReason"]), sequence: stopSequenceOf(j["additionalModelResponseFields"]) };
        return false;
      case "metadata":
        if (!this.stop) return false;
        emit(mapConverseUsage(obj(j["usage"])));
        emit(this.finish());
        this.ended = true;
        return true;
      default:
        // messageStart, contentBlockStop and events this mapper does not know carry nothing to pass on.
        return false;
    }
  }

  /** The body ended: fine after `metadata`, a truncation before. */
  onBodyEnd(): void {
    if (!this.ended) throw upstreamTruncated(this.provider, this.stop ? "its usage (metadata)" : "it finished (messageStop)");
  }

  /** The finish for the stop reason; a forced JSON-output tool call is a plain stop. */
  private finish(): ChunkPayload {
    const reason = this.stop?.reason ?? "";
    if (reason === "tool_use" && this.tools === 0) return finishPayload(FinishReason.REASON_STOP);
    return finishPayload(mapStopReason(reason), reason === "stop_sequence" ? this.stop?.sequence : "");
  }

  private onStart(at: number, start: Obj, emit: (p: ChunkPayload) => void): void {
    if (!isObj(start["toolUse"])) return;
    const t = start["toolUse"];
    const name = str(t["name"]);
    if (this.jsonTool !== undefined && name === this.jsonTool) {
      this.blocks.set(at, { kind: "json" });
      return;
    }
    const index = this.tools++;
    this.blocks.set(at, { kind: "tool", index });
    emit(toolCallPayload({ index, id: str(t["toolUseId"]), name, arguments: "" }));
  }

  private onDelta(at: number, delta: Obj, emit: (p: ChunkPayload) => void): void {
    if (typeof delta["text"] === "string") {
      if (!this.blocks.has(at)) this.blocks.set(at, { kind: "text" });
      if (delta["text"]) emit(textPayload(delta["text"]));
      return;
    }
    if (isObj(delta["toolUse"])) {
      const block = this.blocks.get(at);
      const input = str(delta["toolUse"]["input"]);
      if (block?.kind === "json") {
        if (input) emit(textPayload(input));
        return;
      }
      if (block?.kind !== "tool") throw malformed(this.provider, `a toolUse delta for block ${at}, which no contentBlockStart opened as a tool`);
      if (input) emit(toolCallPayload({ index: block.index, id: "", name: "", arguments: input }));
      return;
    }
    if (isObj(delta["reasoningContent"])) {
      const r = delta["reasoningContent"];
      if (!this.blocks.has(at)) this.blocks.set(at, { kind: "reasoning" });
      const text = str(r["text"]);
      const signature = str(r["signature"]);
      const encrypted = str(r["redactedContent"]);
      if (text || signature || encrypted) emit(reasoningPayload({ text, signature, encrypted, index: at }));
    }
  }

  private payload(msg: EventStreamMessage): Obj {
    if (msg.body.length === 0) return {};
    let j: unknown;
    try {
      j = JSON.parse(Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength).toString("utf8"));
    } catch {
      throw malformed(this.provider, "an event-stream payload that is not JSON");
    }
    if (!isObj(j)) throw malformed(this.provider, "an event-stream payload that is not a JSON object");
    return j;
  }
}

/**
 * Translates a Bedrock `converse-stream` body (binary event stream) into
 * chunk payloads, read by {@link EventStreamPushStream} (backpressure,
 * `alive` for reads that carry no payload, the body's end drained after
 * `metadata`), mapped by {@link ConverseStreamMapper}.
 */
export function converseStreamPayloads(
  body: PushBody,
  provider: string,
  signal: AbortSignal | AbortSource,
  jsonTool: string | undefined,
  alive?: () => void,
): AsyncIterableIterator<ChunkPayload> {
  const mapper = new ConverseStreamMapper(provider, jsonTool);
  return new EventStreamPushStream<ChunkPayload>(
    body,
    provider,
    {
      onMessage: (msg, emit) => mapper.onMessage(msg, emit),
      onBodyEnd: () => mapper.onBodyEnd(),
      readError: (e) => streamReadError(provider, e, signal),
    },
    alive,
  );
}

/**
 * The payloads of a whole `/converse` answer (`output.message.content`,
 * `stopReason`, `usage`), in the order a stream would have given them.
 */
export function converseAnswerPayloads(provider: string, answer: unknown, jsonTool: string | undefined): ChunkPayload[] {
  const j = obj(answer);
  const message = obj(obj(j["output"])["message"]);
  if (!Array.isArray(message["content"])) throw malformed(provider, "a Converse answer without output.message.content");
  const out: ChunkPayload[] = [];
  let tools = 0;
  message["content"].forEach((b: unknown, at: number) => {
    const block = obj(b);
    if (typeof block["text"] === "string" && block["text"]) out.push(textPayload(block["text"]));
    else if (isObj(block["toolUse"])) {
      const t = block["toolUse"];
      const args = JSON.stringify(t["input"] ?? {});
      if (jsonTool !== undefined && t["name"] === jsonTool) out.push(textPayload(args));
      else out.push(toolCallPayload({ index: tools++, id: str(t["toolUseId"]), name: str(t["name"]), arguments: args }));
    } else if (isObj(block["reasoningContent"])) {
      const r = block["reasoningContent"];
      const rt = obj(r["reasoningText"]);
      out.push(reasoningPayload({ text: str(rt["text"]), signature: str(rt["signature"]), encrypted: str(r["redactedContent"]), index: at }));
    }
  });
  const reason = str(j["stopReason"]);
  out.push(mapConverseUsage(obj(j["usage"])));
  const finish = reason === "tool_use" && tools === 0 ? FinishReason.REASON_STOP : mapStopReason(reason);
  out.push(finishPayload(finish, reason === "stop_sequence" ? stopSequenceOf(j["additionalModelResponseFields"]) : ""));
  return out;
}
