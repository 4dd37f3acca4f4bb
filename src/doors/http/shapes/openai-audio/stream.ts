import type { Chunk, Usage } from "../../../../gen/spillway/v1/chunk.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { sseData, type StreamEncoder } from "../../sse.js";
import { SSE_DONE, sseErrorFrame } from "../openai/wire.js";
import { TranscriptBuilder, transcriptTokenUsage } from "./json.js";

/**
 * Encodes a transcription stream as OpenAI's `transcript.text.delta` events
 * (with the seed's `text` key beside `delta`), then `transcript.text.done`
 * with the full text and usage, then `data: [DONE]`. An error chunk becomes
 * an `error` event; when `whyFailed` names a cause the door knows better (the
 * upload failed, so the recognizer's input stopped), that cause is reported.
 */
export class TranscriptSseEncoder implements StreamEncoder {
  private readonly transcript = new TranscriptBuilder();
  private usage: Usage | undefined;

  constructor(private readonly whyFailed: () => SpillwayError | undefined = () => undefined) {}

  encode(chunk: Chunk): string {
    const p = chunk.payload;
    switch (p?.$case) {
      case "transcript": {
        const piece = this.transcript.push(p.value);
        if (!piece) return "";
        const d = JSON.stringify(piece);
        return sseData(`{"type":"transcript.text.delta","delta":${d},"text":${d}}`);
      }
      case "usage":
        this.usage = p.value;
        return "";
      case "finish": {
        const done: Record<string, unknown> = { type: "transcript.text.done", text: this.transcript.text };
        if (this.usage) done["usage"] = transcriptTokenUsage(this.usage);
        return sseData(JSON.stringify(done)) + SSE_DONE;
      }
      case "error":
        return sseErrorFrame(this.whyFailed() ?? SpillwayError.fromChunkError(p.value), `"type":"error",`);
      default:
        return "";
    }
  }
}
