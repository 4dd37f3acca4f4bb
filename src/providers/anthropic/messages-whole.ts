import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { finishPayload, reasoningPayload, textPayload, toolCallPayload, type ChunkPayload } from "../../engine/payload.js";
import { isObj, str } from "../shared/json.js";
import type { UpstreamResponse } from "../shared/upstream-http.js";
import { mapStopReason, mapUsage } from "./messages-stream.js";

/**
 * The payloads of a whole (non-streamed) Anthropic Message: each content
 * block in order (text, `thinking` with its signature, `redacted_thinking`,
 * `tool_use` with its whole input), then usage and the stop reason — the
 * payloads the stream mapper makes, so every shape renders them alike.
 */
export function wholeMessagePayloads(j: unknown, provider: string): ChunkPayload[] {
  if (!isObj(j) || !Array.isArray(j["content"])) {
    throw new SpillwayError(Code.Unavailable, `${provider}: the upstream answered without content`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
  }
  const out: ChunkPayload[] = [];
  let tools = 0;
  let reasoning = 0;
  for (const block of j["content"] as unknown[]) {
    if (!isObj(block)) continue;
    switch (block["type"]) {
      case "text":
        if (str(block["text"])) out.push(textPayload(str(block["text"])));
        break;
      case "thinking":
        out.push(reasoningPayload({ index: reasoning++, text: str(block["thinking"]), signature: str(block["signature"]) }));
        break;
      case "redacted_thinking":
        out.push(reasoningPayload({ index: reasoning++, encrypted: str(block["data"]) }));
        break;
      case "tool_use":
        out.push(toolCallPayload({ index: tools++, id: str(block["id"]), name: str(block["name"]), arguments: JSON.stringify(block["input"] ?? {}) }));
        break;
      default:
        break;
    }
  }
  if (isObj(j["usage"])) out.push(mapUsage(j["usage"]));
  const reason = str(j["stop_reason"]) || "end_turn";
  out.push(finishPayload(mapStopReason(reason), reason === "stop_sequence" ? str(j["stop_sequence"]) : ""));
  return out;
}

/** Reads a whole Message's JSON body and yields its payloads (see {@link wholeMessagePayloads}). */
export async function* wholeMessage(res: UpstreamResponse, provider: string): AsyncGenerator<ChunkPayload> {
  let j: unknown;
  try {
    j = await res.json();
  } catch (e) {
    throw new SpillwayError(Code.Unavailable, `${provider}: the upstream's answer is not JSON (${(e as Error).message})`, {
      httpStatus: 502,
      reason: "upstream_error",
      fromUpstream: true,
    });
  }
  yield* wholeMessagePayloads(j, provider);
}
