import { finishPayload, FinishReason } from "../../engine/payload.js";
import type { ChatChunkHook } from "../openai/chat-stream.js";
import { isObj } from "../shared/json.js";

/** True when any category of one Azure `content_filter_results` object says `filtered: true`. */
export function anyFiltered(results: unknown): boolean {
  if (!isObj(results)) return false;
  return Object.values(results).some((r) => isObj(r) && r["filtered"] === true);
}

/**
 * Azure OpenAI's content-filter annotations on a streamed chat, as a hook
 * for the shared OpenAI mapper (one per stream):
 * `prompt_filter_results` (often alone in a first chunk with empty
 * `choices`, `id` and `object`) and each choice's `content_filter_results`.
 * Once Azure says it `filtered` a category, the answer ends as a
 * content-filter finish: the finish is emitted then and again after any
 * later finish (the engine keeps the last), so a plain `stop` cannot hide
 * it. Annotations that filtered nothing carry no payload. Azure's own
 * `finish_reason: "content_filter"` is mapped by the shared mapper.
 */
export function azureContentFilter(): ChatChunkHook {
  let filtered = false;
  return (chunk, emit) => {
    const prompts = chunk["prompt_filter_results"];
    const choices = chunk["choices"];
    const now =
      (Array.isArray(prompts) && prompts.some((p) => isObj(p) && anyFiltered(p["content_filter_results"]))) ||
      (Array.isArray(choices) && choices.some((c) => isObj(c) && anyFiltered(c["content_filter_results"])));
    const finishes = Array.isArray(choices) && choices.some((c) => isObj(c) && typeof c["finish_reason"] === "string" && c["finish_reason"] !== "");
    if (now || (filtered && finishes)) emit(finishPayload(FinishReason.REASON_CONTENT_FILTER));
    filtered ||= now;
  };
}
