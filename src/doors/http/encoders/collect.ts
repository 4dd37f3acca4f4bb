import { Finish_Reason, type Usage } from "../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../engine/active-stream.js";
import { SpillwayError } from "../../../engine/errors.js";
import { emptyUsage } from "../../../engine/payload.js";

/** A whole text generation, gathered from its stream. */
export interface CollectedText {
  text: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  usage: Usage;
  finishReason: Finish_Reason;
}

/**
 * Reads a stream to its end for a non-streaming response. An in-band error
 * is thrown, so the client gets an error status rather than partial text.
 */
export async function collectText(stream: EngineStream): Promise<CollectedText> {
  const out: CollectedText = { text: "", toolCalls: [], usage: emptyUsage(), finishReason: Finish_Reason.REASON_STOP };
  for await (const c of stream) {
    const p = c.payload;
    switch (p?.$case) {
      case "text":
        out.text += p.value.text;
        break;
      case "toolCall": {
        const t = p.value;
        const call = (out.toolCalls[t.index] ??= { id: "", name: "", arguments: "" });
        if (t.id) call.id = t.id;
        if (t.name) call.name = t.name;
        call.arguments += t.arguments;
        break;
      }
      case "usage":
        out.usage = p.value;
        break;
      case "finish":
        out.finishReason = p.value.reason;
        break;
      case "error":
        throw SpillwayError.fromChunkError(p.value);
      default:
        break;
    }
  }
  out.toolCalls = out.toolCalls.filter(Boolean);
  return out;
}
