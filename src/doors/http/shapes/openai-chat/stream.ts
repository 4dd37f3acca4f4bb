import type { Chunk, Usage } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { sseData, type StreamEncoder } from "../../sse.js";
import { finishReasonText, SSE_DONE, sseErrorFrame, usageJson } from "../openai/wire.js";

/**
 * The end of an OpenAI stream. With `stream_options.include_usage` OpenAI
 * sends the finish chunk, then one more chunk whose `choices` is an empty
 * array and which carries `usage`, then `[DONE]` (clients such as
 * LangChain add up usage over chunks, so usage must come exactly once).
 * Without it, Spillway puts usage on the finish chunk itself: usage and
 * finish only at the end, never with content. `head` is the chunk's JSON up
 * to and including `"choices":`.
 */
function ending(head: string, finishChoice: string, usage: Usage | undefined, includeUsage: boolean): string {
  const u = usage ? JSON.stringify(usageJson(usage)) : undefined;
  if (includeUsage) return sseData(`${head}[${finishChoice}]}`) + (u ? sseData(`${head}[],"usage":${u}}`) : "") + SSE_DONE;
  return sseData(`${head}[${finishChoice}]${u ? `,"usage":${u}` : ""}}`) + SSE_DONE;
}

/**
 * Encodes a stream as OpenAI `chat.completion.chunk` SSE events. The JSON
 * around each delta is built once per stream, so a chunk costs one
 * JSON.stringify of its text. Reasoning goes out as `delta.reasoning_content`
 * (the field DeepSeek, vLLM and others use). The end: see {@link ending}.
 */
export class ChatSseEncoder implements StreamEncoder {
  private readonly choices: string;
  private readonly head: string;
  private roleSent = false;
  private usage: Usage | undefined;

  /** `stream`: what the chunks are labelled with (an open engine stream, or a stored one's id, time and model). */
  constructor(
    stream: Pick<EngineStream, "id" | "created"> & { readonly route: { readonly model: string } },
    private readonly includeUsage: boolean,
  ) {
    this.choices = `{"id":"chatcmpl-${stream.id}","object":"chat.completion.chunk","created":${stream.created},"model":${JSON.stringify(stream.route.model)},"choices":`;
    this.head = `${this.choices}[{"index":0,"delta":{`;
  }

  private role(): string {
    if (this.roleSent) return "";
    this.roleSent = true;
    return `"role":"assistant",`;
  }

  encode(chunk: Chunk): string {
    const p = chunk.payload;
    switch (p?.$case) {
      case "text":
        // The frame in one template (`sseData` inlined): one string less per chunk.
        return `data: ${this.head}${this.role()}"content":${JSON.stringify(p.value.text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
      case "reasoning":
        if (!p.value.text) return "";
        return sseData(`${this.head}${this.role()}"reasoning_content":${JSON.stringify(p.value.text)}},"logprobs":null,"finish_reason":null}]}`);
      case "toolCall": {
        const t = p.value;
        const call: Record<string, unknown> = { index: t.index };
        const fn: Record<string, string> = {};
        if (t.id) {
          call["id"] = t.id;
          call["type"] = "function";
        }
        if (t.name) fn["name"] = t.name;
        fn["arguments"] = t.arguments;
        call["function"] = fn;
        const role = this.roleSent ? "" : `"role":"assistant","content":null,`;
        this.roleSent = true;
        return sseData(`${this.head}${role}"tool_calls":[${JSON.stringify(call)}]},"logprobs":null,"finish_reason":null}]}`);
      }
      case "usage":
        this.usage = p.value;
        return "";
      case "finish": {
        const role = this.roleSent ? "" : `"role":"assistant","content":""`;
        const choice = `{"index":0,"delta":{${role}},"logprobs":null,"finish_reason":"${finishReasonText(p.value.reason)}"}`;
        return ending(this.choices, choice, this.usage, this.includeUsage);
      }
      case "error":
        return sseErrorFrame(SpillwayError.fromChunkError(p.value));
      default:
        return "";
    }
  }
}

/**
 * Encodes a stream as legacy `text_completion` SSE events: text in
 * `choices[0].text`, `finish_reason` in the last event, usage as for chat
 * (see {@link ending}), then `data: [DONE]`.
 */
export class CompletionSseEncoder implements StreamEncoder {
  private readonly choices: string;
  private readonly head: string;
  private usage: Usage | undefined;

  /** `stream`: what the chunks are labelled with (an open engine stream, or a stored one's id, time and model). */
  constructor(
    stream: Pick<EngineStream, "id" | "created"> & { readonly route: { readonly model: string } },
    private readonly includeUsage: boolean,
  ) {
    this.choices = `{"id":"cmpl-${stream.id}","object":"text_completion","created":${stream.created},"model":${JSON.stringify(stream.route.model)},"choices":`;
    this.head = `${this.choices}[{"text":`;
  }

  encode(chunk: Chunk): string {
    const p = chunk.payload;
    switch (p?.$case) {
      case "text":
        return sseData(`${this.head}${JSON.stringify(p.value.text)},"index":0,"logprobs":null,"finish_reason":null}]}`);
      case "usage":
        this.usage = p.value;
        return "";
      case "finish": {
        const choice = `{"text":"","index":0,"logprobs":null,"finish_reason":"${finishReasonText(p.value.reason)}"}`;
        return ending(this.choices, choice, this.usage, this.includeUsage);
      }
      case "error":
        return sseErrorFrame(SpillwayError.fromChunkError(p.value));
      default:
        return "";
    }
  }
}
