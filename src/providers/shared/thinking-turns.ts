import type { Message, ReasoningPart } from "../../gen/spillway/v1/request.js";

/**
 * Whether Claude would refuse extended thinking for these messages: the
 * conversation is inside a tool loop (tool results after the last assistant
 * turn) and that assistant turn does not begin with a reasoning block the
 * provider can send back (`sendable`: one with its signature or redacted
 * data). Anthropic answers that with a 400 — "When `thinking` is enabled, a
 * final `assistant` message must start with a thinking block … To avoid this
 * requirement, disable `thinking`" — and so does Claude on Bedrock. It is
 * what every client that cannot keep reasoning between turns sends (OpenAI
 * chat has no field for it), so the providers leave thinking off for such a
 * request rather than fail it; the turn after the tool loop thinks again.
 * Consecutive assistant messages count as one turn, as the providers merge
 * them.
 */
export function toolTurnLacksThinking(messages: readonly Message[], sendable: (r: ReasoningPart) => boolean): boolean {
  let last = messages.length - 1;
  while (last >= 0 && messages[last]!.role !== "assistant") last--;
  if (last < 0 || !messages.slice(last + 1).some((m) => m.role === "tool")) return false;
  let first = last;
  while (first > 0 && messages[first - 1]!.role === "assistant") first--;
  for (let i = first; i <= last; i++) {
    const m = messages[i]!;
    if (m.contents.length === 0) {
      if (m.content || m.toolCalls.length > 0) return true;
      continue;
    }
    for (const p of m.contents) {
      const part = p.part;
      if (part?.$case === "reasoning") return !sendable(part.value);
      if ((part?.$case === "text" || part?.$case === "refusal") && !part.value) continue;
      return true;
    }
    if (m.toolCalls.length > 0) return true;
  }
  return false;
}
