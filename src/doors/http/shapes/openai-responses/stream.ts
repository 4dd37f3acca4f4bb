import type { Chunk } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import type { ResponseEcho } from "./request.js";
import { sseEvent, type StreamEncoder } from "../../sse.js";
import { ResponsesBuilder } from "./builder.js";
import type { ResponseHead } from "./json.js";

/** The identity of the Response a stream becomes (`resp_<stream id>`). */
export function responseHead(stream: EngineStream, echo: ResponseEcho): ResponseHead {
  return { id: `resp_${stream.id}`, createdAt: stream.created, model: stream.route.model, echo };
}

/**
 * Encodes a stream as OpenAI Responses SSE: `event: <type>` + `data:` frames
 * in the order {@link ResponsesBuilder} documents, `response.created` and
 * `response.in_progress` before the first chunk's events. There is no
 * `[DONE]`: the response ends after `response.completed` (or
 * `response.incomplete` / `response.failed`) and the connection closes.
 */
export class ResponsesSseEncoder implements StreamEncoder {
  private readonly builder: ResponsesBuilder;
  private out = "";
  private started = false;

  constructor(stream: EngineStream, echo: ResponseEcho) {
    this.builder = new ResponsesBuilder(responseHead(stream, echo), (type, json) => {
      this.out += sseEvent(type, json);
    });
  }

  encode(chunk: Chunk): string {
    if (!this.started) {
      this.started = true;
      this.builder.start();
    }
    this.builder.push(chunk);
    const text = this.out;
    this.out = "";
    return text;
  }
}
