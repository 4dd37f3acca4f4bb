/**
 * Tool-calling conversations for the fake upstreams: the model asks for the
 * given tool calls until a tool result comes back, then answers with text
 * quoting the results ("It is <result> & <result>"). Shared by the tool
 * tests and the third-party SDK tests.
 */
import { messageEnd, messageStart, textBlock, toolUseBlock } from "./fake-anthropic.js";
import { chatChunk, chatEvents, usageChunk } from "./fake-openai.js";

/** One tool call the fake model makes, its arguments sent in `pieces`. */
export interface ScriptedCall {
  readonly id: string;
  readonly name: string;
  readonly pieces: readonly string[];
}

/** OpenAI chat chunks asking for tool calls; `interleave` mixes the argument pieces of the calls. */
export function openAiToolCalls(calls: readonly ScriptedCall[], interleave = false): unknown[] {
  const delta = (index: number, fields: Record<string, unknown>): unknown => chatChunk(null, { tool_calls: [{ index, ...fields }] });
  const events: unknown[] = [chatChunk(null, { role: "assistant", content: null })];
  const starts = calls.map((c, i) => delta(i, { id: c.id, type: "function", function: { name: c.name, arguments: "" } }));
  const pieces = calls.map((c, i) => c.pieces.map((p) => delta(i, { function: { arguments: p } })));
  if (interleave) {
    events.push(...starts);
    const longest = Math.max(...pieces.map((p) => p.length));
    for (let k = 0; k < longest; k++) for (const p of pieces) if (p[k]) events.push(p[k]);
  } else calls.forEach((_, i) => events.push(starts[i], ...pieces[i]!));
  events.push(chatChunk(null, {}, "tool_calls"), usageChunk(20, 9));
  return events;
}

/** The fake OpenAI: tool calls while no tool result came back, then a text answer quoting the result. */
export function openAiConversation(calls: readonly ScriptedCall[], interleave = false) {
  return (req: { body: any }) => {
    const tool = (req.body.messages as any[]).filter((m) => m.role === "tool");
    if (tool.length === 0) return { events: openAiToolCalls(calls, interleave) };
    return { events: chatEvents(["It is ", tool.map((m) => m.content).join(" & ")]) };
  };
}

/** The fake Anthropic: text then tool_use blocks, then a text answer once tool results came back. */
export function anthropicConversation(calls: readonly ScriptedCall[]) {
  return (req: { body: any }) => {
    const results = (req.body.messages as any[]).flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((b: any) => b.type === "tool_result");
    if (results.length === 0) {
      return {
        events: [
          messageStart(30),
          ...textBlock(0, ["Let me check."]),
          ...calls.flatMap((c, i) => toolUseBlock(i + 1, c.id, c.name, [...c.pieces])),
          ...messageEnd("tool_use", 12),
        ],
      };
    }
    return { events: [messageStart(40), ...textBlock(0, ["It is ", results.map((r: any) => r.content).join(" & ")]), ...messageEnd("end_turn", 4)] };
  };
}
