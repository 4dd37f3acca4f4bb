import type { Chunk, Usage } from "../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../engine/active-stream.js";
import { SpillwayError } from "../../../engine/errors.js";
import { SSE_DONE, sseData, sseErrorFrame, type StreamEncoder } from "../sse.js";
import { finishReasonText, usageJson } from "./openai-json.js";

/**
 * Encodes a stream as legacy `text_completion` SSE events: text in
 * `choices[0].text`, `finish_reason` (and `usage`, when asked for) in the
 * last event, then `data: [DONE]`.
 */
export class CompletionSseEncoder implements StreamEncoder {
  private readonly head: string;
  private usage: Usage | undefined;

  constructor(
    stream: EngineStream,
    private readonly includeUsage: boolean,
  ) {
    this.head = `{"id":"cmpl-${stream.id}","object":"text_completion","created":${stream.created},"model":${JSON.stringify(stream.route.model)},"choices":[{"text":`;
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
        const usage = this.includeUsage && this.usage ? `,"usage":${JSON.stringify(usageJson(this.usage))}` : "";
        return sseData(`${this.head}"","index":0,"logprobs":null,"finish_reason":"${finishReasonText(p.value.reason)}"}]${usage}}`) + SSE_DONE;
      }
      case "error":
        return sseErrorFrame(SpillwayError.fromChunkError(p.value));
      default:
        return "";
    }
  }
}
