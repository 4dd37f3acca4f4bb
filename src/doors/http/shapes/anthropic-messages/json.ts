import type { EngineStream } from "../../../../engine/active-stream.js";
import { Code } from "../../../../engine/code.js";
import { SpillwayError } from "../../../../engine/errors.js";
import type { CollectedText } from "../collect.js";
import { anthropicUsage, stopReason } from "./stream.js";

/** A tool call's arguments as the `input` object Anthropic's `tool_use` blocks carry. */
function toolInput(args: string, name: string): unknown {
  if (!args.trim()) return {};
  try {
    return JSON.parse(args) as unknown;
  } catch (e) {
    throw new SpillwayError(Code.DataLoss, `The model's arguments for the tool '${name}' are not valid JSON.`, { httpStatus: 502, reason: "upstream_error", cause: e });
  }
}

/**
 * Anthropic's `Message` object for a whole generation: content blocks in
 * the order reasoning (`thinking` with its signature, or `redacted_thinking`),
 * text, then `tool_use` blocks (the engine's collected form keeps no
 * interleaving between them); `stop_reason`, `stop_sequence` and usage as
 * in the stream ({@link stopReason}, {@link anthropicUsage}). Tool-call
 * arguments that are not JSON fail with a 502 rather than lose the call.
 */
export function messageJson(stream: EngineStream, r: CollectedText): Record<string, unknown> {
  const content: Array<Record<string, unknown>> = [];
  for (const b of r.reasoning) {
    if (b.encrypted && !b.id && !b.text) content.push({ type: "redacted_thinking", data: b.encrypted });
    else if (b.text || b.signature) content.push({ type: "thinking", thinking: b.text, signature: b.signature });
  }
  if (r.text) content.push({ type: "text", text: r.text });
  r.toolCalls.forEach((c, i) => content.push({ type: "tool_use", id: c.id || `toolu_${stream.id}_${i}`, name: c.name, input: toolInput(c.arguments, c.name) }));
  const reason = stopReason({ reason: r.finishReason, stopSequence: r.stopSequence }, r.toolCalls.length > 0);
  return {
    id: `msg_${stream.id}`,
    type: "message",
    role: "assistant",
    model: stream.route.model,
    content,
    stop_reason: reason,
    stop_sequence: reason === "stop_sequence" ? r.stopSequence : null,
    usage: anthropicUsage(r.usage),
  };
}
