import { Finish_Reason, type Chunk, type Usage } from "../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../engine/active-stream.js";
import { SpillwayError } from "../../../engine/errors.js";
import { emptyUsage } from "../../../engine/payload.js";

/** One reasoning block of a whole generation. */
export interface CollectedReasoning {
  text: string;
  signature: string;
  encrypted: string;
  summary: boolean;
  id: string;
}

/** A whole text generation, gathered from its stream. */
export interface CollectedText {
  text: string;
  /** Reasoning blocks, in order of their index. */
  reasoning: CollectedReasoning[];
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  /** The stop sequence that ended the output, when an upstream said. */
  stopSequence: string;
  usage: Usage;
  finishReason: Finish_Reason;
}

/**
 * Reads a stream to its end for a non-streaming response. An in-band error
 * is thrown, so the client gets an error status rather than partial text.
 * A whole answer's chunks are all ready at once: then the result is
 * returned as it is, with no promise (await it either way); a stream that
 * must be waited for gives a promise.
 */
export function collectText(stream: EngineStream): CollectedText | Promise<CollectedText> {
  const out: CollectedText = { text: "", reasoning: [], toolCalls: [], stopSequence: "", usage: emptyUsage(), finishReason: Finish_Reason.REASON_STOP };
  const it = stream[Symbol.asyncIterator]();
  let ended = false;
  let handedOver = false;
  try {
    for (;;) {
      // A whole answer's chunks are all ready at once: taken without a promise each.
      const r = stream.tryNext?.();
      if (r === undefined) {
        handedOver = true;
        return collectRest(stream, it, out);
      }
      if (r.done) {
        ended = true;
        return finished(out);
      }
      take(out, r.value);
    }
  } finally {
    // As `for await` did: leaving early (an in-band error) closes the stream. (Not when the rest is awaited: collectRest closes it.)
    if (!ended && !handedOver) void it.return?.()?.catch(() => undefined);
  }
}

/** {@link collectText}'s rest, awaiting the chunks that are not ready. */
async function collectRest(stream: EngineStream, it: AsyncIterator<Chunk>, out: CollectedText): Promise<CollectedText> {
  let ended = false;
  try {
    for (;;) {
      const r = stream.tryNext?.() ?? (await it.next());
      if (r.done) {
        ended = true;
        break;
      }
      take(out, r.value);
    }
  } finally {
    if (!ended) void it.return?.()?.catch(() => undefined);
  }
  return finished(out);
}

/** The collection with its sparse lists compacted. */
function finished(out: CollectedText): CollectedText {
  out.toolCalls = out.toolCalls.filter(Boolean);
  out.reasoning = out.reasoning.filter(Boolean);
  return out;
}

/** Adds one chunk to the whole; an in-band error is thrown. */
function take(out: CollectedText, c: Chunk): void {
  const p = c.payload;
  switch (p?.$case) {
    case "text":
      out.text += p.value.text;
      break;
    case "reasoning": {
      const r = p.value;
      const block = (out.reasoning[r.index] ??= { text: "", signature: "", encrypted: "", summary: r.summary, id: "" });
      block.text += r.text;
      block.signature += r.signature;
      block.encrypted += r.encrypted;
      if (r.id) block.id = r.id;
      break;
    }
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
      out.stopSequence = p.value.stopSequence;
      break;
    case "error":
      throw SpillwayError.fromChunkError(p.value);
    default:
      break;
  }
}
