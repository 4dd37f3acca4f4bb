import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
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
import { count, isObj, obj, str, type Obj } from "../shared/json.js";
import { SsePushStream } from "../shared/sse-push.js";
import { DEFAULT_MAX_EVENT_BYTES, parseEventJson } from "../shared/sse-events.js";
import { streamReadError, upstreamTruncated } from "../shared/upstream-errors.js";
import { googleError } from "./errors.js";

/** Finish reasons that mean the output was blocked or withheld by a filter. */
const FILTERED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"]);
/** Finish reasons that mean the model produced a tool call that cannot be used: a retryable failure, not an answer. */
const BAD_CALL = new Set(["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"]);

/**
 * Maps Gemini's `finishReason` to the engine's: `STOP` (also sent after
 * function calls, hence `calls`), `MAX_TOKENS` → length, the safety and
 * recitation family → content filter; anything else (`OTHER`, `LANGUAGE`,
 * unknown values) → stop.
 */
export function mapFinishReason(reason: string, calls: number): FinishReason {
  if (reason === "MAX_TOKENS") return FinishReason.REASON_LENGTH;
  if (FILTERED.has(reason)) return FinishReason.REASON_CONTENT_FILTER;
  return calls > 0 ? FinishReason.REASON_TOOL_CALLS : FinishReason.REASON_STOP;
}

/**
 * Gemini's `usageMetadata` as usage: input = `promptTokenCount` (cached
 * tokens included, `cachedContentTokenCount` as cached), output =
 * `candidatesTokenCount` + `thoughtsTokenCount` (OpenAI counts reasoning as
 * output), reasoning = `thoughtsTokenCount`.
 */
function mapUsage(u: Obj): ChunkPayload {
  const thoughts = count(u["thoughtsTokenCount"]);
  const input = count(u["promptTokenCount"]) + count(u["toolUsePromptTokenCount"]);
  const output = count(u["candidatesTokenCount"]) + thoughts;
  return usagePayload({
    inputTokens: input,
    outputTokens: output,
    totalTokens: count(u["totalTokenCount"]) || input + output,
    cachedInputTokens: count(u["cachedContentTokenCount"]),
    reasoningTokens: thoughts,
  });
}

/**
 * The state of one Gemini answer, fed `GenerateContentResponse` objects in
 * order (SSE events, or the one body of `:generateContent`), and told when
 * the body ended. Synchronous; throws a SpillwayError to fail the stream.
 */
export class GeminiAnswer {
  private calls = 0;
  /** Reasoning blocks started so far; the open one has index `blocks - 1`. */
  private blocks = 0;
  private inReasoning = false;
  /** Text has been emitted since the last reasoning or call (a message is being written). */
  private inText = false;
  private finish = "";
  private blocked = "";
  private usage: Obj | undefined;

  constructor(private readonly provider: string) {}

  /** Maps one response object: content goes to `emit` at once, usage and finish wait for {@link end}. */
  feed(j: unknown, emit: (p: ChunkPayload) => void): void {
    if (!isObj(j)) return;
    if (isObj(j["error"])) throw googleError(this.provider, j["error"]);
    if (isObj(j["usageMetadata"])) this.usage = j["usageMetadata"];
    const block = str(obj(j["promptFeedback"])["blockReason"]);
    if (block) this.blocked = block;
    const candidates = j["candidates"];
    const c = Array.isArray(candidates) ? obj(candidates[0]) : {};
    const parts = obj(c["content"])["parts"];
    if (Array.isArray(parts)) for (const p of parts) if (isObj(p)) this.part(p, emit);
    const reason = str(c["finishReason"]);
    if (reason && reason !== "FINISH_REASON_UNSPECIFIED") this.finish = reason;
  }

  private part(p: Obj, emit: (p: ChunkPayload) => void): void {
    const signature = str(p["thoughtSignature"]);
    if (p["thought"] === true) {
      if (!this.inReasoning) this.blocks++;
      this.inReasoning = true;
      this.inText = false;
      const text = str(p["text"]);
      // With includeThoughts Gemini returns thought summaries, not the raw reasoning.
      if (text || signature) emit(reasoningPayload({ text, signature, summary: text !== "", index: this.blocks - 1 }));
      return;
    }
    const text = p["text"];
    // Gemini signs the part after its thoughts (a call, or text): kept as the reasoning block's
    // signature. A signature on text in the middle of a message (Gemini 3 signs a text answer's
    // last part) is left out: Gemini does not require it back, and a reasoning block there would
    // split the message in two for shapes that render blocks as items (Responses).
    if (signature && !(typeof text === "string" && this.inText)) {
      if (!this.inReasoning) this.blocks++;
      emit(reasoningPayload({ signature, index: this.blocks - 1 }));
    }
    if (typeof text === "string") {
      this.inReasoning = false;
      if (text) {
        this.inText = true;
        emit(textPayload(text));
      }
      return;
    }
    const call = p["functionCall"];
    if (isObj(call)) {
      this.inReasoning = false;
      this.inText = false;
      const args = isObj(call["args"]) ? call["args"] : {};
      emit(toolCallPayload({ index: this.calls++, id: str(call["id"]) || `call_${randomUUID().replaceAll("-", "")}`, name: str(call["name"]), arguments: JSON.stringify(args) }));
    }
    // Other parts (inlineData output, executableCode, codeExecutionResult) have no chunk form and are skipped.
  }

  /**
   * The body ended: usage (the last `usageMetadata`, which is cumulative)
   * and the finish. Without a `finishReason` or a prompt `blockReason` the
   * answer was cut off: throws a truncation. A malformed or unexpected
   * function call throws a retryable error.
   */
  end(emit: (p: ChunkPayload) => void): void {
    if (!this.finish && !this.blocked) throw upstreamTruncated(this.provider, "a finishReason");
    if (BAD_CALL.has(this.finish)) {
      throw new SpillwayError(Code.Unavailable, `${this.provider}: the model produced an unusable function call (${this.finish})`, {
        httpStatus: 502,
        reason: "upstream_bad_tool_call",
        retryable: true,
        fromUpstream: true,
      });
    }
    if (this.usage) emit(mapUsage(this.usage));
    emit(finishPayload(this.blocked && !this.finish ? FinishReason.REASON_CONTENT_FILTER : mapFinishReason(this.finish, this.calls)));
  }
}

/**
 * Translates Gemini's `:streamGenerateContent?alt=sse` body (one
 * `data: {GenerateContentResponse}` event per chunk, CRLF-separated, no end
 * marker) into chunk payloads, as the socket delivers them
 * ({@link SsePushStream}). `thought: true` parts become reasoning deltas,
 * a `thoughtSignature` the block's signature; each `functionCall` (Gemini
 * sends calls whole) a tool call with its own index and an id (Gemini's
 * own, else a generated `call_…`). A `data: {"error":…}` event, or a bare
 * `{"error":…}` object in the body, fails the stream with the mapped error
 * (in-band once content has flowed); a body
 * that ends without a `finishReason` is a truncation. Reads without a
 * payload call `alive`.
 */
export function geminiStreamPayloads(body: Readable, provider: string, signal: AbortSignal, alive?: () => void): AsyncIterableIterator<ChunkPayload> {
  const answer = new GeminiAnswer(provider);
  let emitEnd: ((p: ChunkPayload) => void) | undefined;
  watchBareErrors(body, provider);
  return new SsePushStream<ChunkPayload>(
    body,
    provider,
    {
      onEvent(ev, emit) {
        emitEnd = emit;
        answer.feed(parseEventJson(ev.data, provider), emit);
        return false;
      },
      onBodyEnd() {
        answer.end((p) => emitEnd?.(p));
      },
      readError: (e) => streamReadError(provider, e, signal),
    },
    DEFAULT_MAX_EVENT_BYTES,
    alive,
  );
}

/** Most bytes of a bare JSON error object collected from a stream. */
const MAX_BARE_ERROR = 64 * 1024;

/**
 * Google can also put an error into a stream as a bare JSON object
 * (`{"error":{…}}` without `data:`), which `@google/genai` checks every read
 * for and the SSE parser would skip. A second `data` listener looks at reads
 * that start a new line with `{` and, when they hold such an object, destroys
 * the body with the mapped error, which {@link SsePushStream} reports as the
 * stream's failure. Other reads cost one byte check.
 */
function watchBareErrors(body: Readable, provider: string): void {
  let pending = "";
  let atLineStart = true;
  body.on("data", (b: Buffer) => {
    let i = 0;
    while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x5b || b[i] === 0x2c)) i++;
    if (pending || (atLineStart && b[i] === 0x7b)) {
      pending += b.toString("utf8");
      try {
        const j = JSON.parse(pending.replace(/^[\s[,]+|[\s\],]+$/g, "")) as unknown;
        pending = "";
        if (isObj(j) && isObj(j["error"])) body.destroy(googleError(provider, j["error"]));
      } catch {
        if (pending.length > MAX_BARE_ERROR) pending = "";
      }
    }
    const last = b.at(-1);
    atLineStart = last === 0x0a || last === 0x0d;
  });
}

/** The payloads of a non-streamed `:generateContent` answer (one `GenerateContentResponse`). */
export function geminiJsonPayloads(json: unknown, provider: string): ChunkPayload[] {
  const out: ChunkPayload[] = [];
  const answer = new GeminiAnswer(provider);
  const push = (p: ChunkPayload): void => void out.push(p);
  answer.feed(json, push);
  answer.end(push);
  return out;
}
