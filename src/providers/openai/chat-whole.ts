import { finishPayload, reasoningPayload, textPayload, toolCallPayload, type ChunkPayload } from "../../engine/payload.js";
import { SpillwayError } from "../../engine/errors.js";
import { Code } from "../../engine/code.js";
import { upstreamJsonSync, type WholeUpstreamResponse } from "../shared/upstream-whole.js";
import { count, isObj, str, type Obj } from "../shared/json.js";
import { mapFinishReason, mapUsage } from "./chat-stream.js";
import { ListIterator } from "../../engine/poll.js";

/**
 * The payloads of a whole (non-streamed) `chat.completion` or legacy
 * `text_completion`: reasoning, text, each tool call whole with its index,
 * usage and finish — the same payloads the stream mapper makes, so every
 * shape renders them alike. A body without a choice is a 502.
 */
export function wholeCompletionPayloads(j: unknown, provider: string, legacy: boolean): ChunkPayload[] {
  const c = isObj(j) && Array.isArray(j["choices"]) ? (j["choices"][0] as unknown) : undefined;
  if (!isObj(c)) {
    throw new SpillwayError(Code.Unavailable, `${provider}: the upstream answered without a choice`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
  }
  const out: ChunkPayload[] = [];
  if (legacy) {
    const text = str(c["text"]);
    if (text) out.push(textPayload(text));
  } else if (isObj(c["message"])) {
    const m: Obj = c["message"];
    const reasoning = str(m["reasoning_content"]) || str(m["reasoning"]);
    if (reasoning) out.push(reasoningPayload({ text: reasoning }));
    const content = str(m["content"]) || str(m["refusal"]);
    if (content) out.push(textPayload(content));
    const calls = m["tool_calls"];
    if (Array.isArray(calls)) {
      calls.forEach((tc: unknown, index) => {
        if (!isObj(tc)) return;
        const fn = isObj(tc["function"]) ? tc["function"] : {};
        out.push(toolCallPayload({ index: typeof tc["index"] === "number" ? count(tc["index"]) : index, id: str(tc["id"]), name: str(fn["name"]), arguments: str(fn["arguments"]) }));
      });
    }
  }
  if (isObj(j) && isObj(j["usage"])) out.push(mapUsage(j["usage"]));
  const reason = str(c["finish_reason"]) || "stop";
  out.push(finishPayload(mapFinishReason(reason), reason === "stop" ? str(c["stop_reason"]) : ""));
  return out;
}

/**
 * A whole completion's payloads from its body read whole (see
 * {@link wholeCompletionPayloads}), as an iterator whose items are all ready
 * (`ListIterator`: the engine takes them without a promise each). Throws as
 * the first pull of a stream would fail: a body that is not JSON, or
 * without a choice. Synchronous: no promise or microtask turn between the
 * upstream's last byte and the payloads.
 */
export function wholeCompletion(res: WholeUpstreamResponse, provider: string, legacy: boolean): ListIterator<ChunkPayload> {
  return new ListIterator(wholeCompletionPayloads(upstreamJsonSync(provider, res), provider, legacy));
}
