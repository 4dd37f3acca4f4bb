import type { Chunk, Usage } from "../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../engine/active-stream.js";
import { SpillwayError } from "../../../engine/errors.js";
import { SSE_DONE, sseData, sseErrorFrame, type StreamEncoder } from "../sse.js";
import { finishReasonText, usageJson } from "./openai-json.js";

/**
 * Encodes a stream as OpenAI `chat.completion.chunk` SSE events. The JSON
 * around each delta is built once per stream, so a chunk costs one
 * JSON.stringify of its text. The last chunk carries `finish_reason` and,
 * when asked for, `usage`; then `data: [DONE]`.
 */
export class ChatSseEncoder implements StreamEncoder {
  private readonly head: string;
  private roleSent = false;
  private usage: Usage | undefined;

  constructor(
    stream: EngineStream,
    private readonly includeUsage: boolean,
  ) {
    this.head = `{"id":"chatcmpl-${stream.id}","object":"chat.completion.chunk","created":${stream.created},"model":${JSON.stringify(stream.route.model)},"choices":[{"index":0,"delta":{`;
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
        return sseData(`${this.head}${this.role()}"content":${JSON.stringify(p.value.text)}},"logprobs":null,"finish_reason":null}]}`);
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
        const usage = this.includeUsage && this.usage ? `,"usage":${JSON.stringify(usageJson(this.usage))}` : "";
        return (
          sseData(`${this.head}${role}},"logprobs":null,"finish_reason":"${finishReasonText(p.value.reason)}"}]${usage}}`) + SSE_DONE
        );
      }
      case "error":
        return sseErrorFrame(SpillwayError.fromChunkError(p.value));
      default:
        return "";
    }
  }
}
