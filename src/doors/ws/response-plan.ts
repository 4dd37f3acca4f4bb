/**
 * The plan of one response: the session's settings, overridden by what a
 * `response.create` asks for (modalities, instructions, voice, tools, …).
 */
import type { ClientEvent, ToolChoice } from "./client-events.js";
import type { ResponsePlan } from "./response.js";
import type { SessionSettings } from "./session-config.js";

/** The session-wide parts of a plan (engine, outbox, conversation, callbacks). */
export type PlanContext = Pick<ResponsePlan, "engine" | "outbox" | "conversation" | "beta" | "principal" | "ticket" | "onEnd">;

/** `tool_choice` as the engine takes it: a mode, or the function's name. */
function toolChoiceName(c: ToolChoice): string {
  return typeof c === "string" ? c : c.name;
}

/** Builds the plan of a response from the settings and the `response.create` event (if any). */
export function responsePlan(
  s: SessionSettings,
  ev: Extract<ClientEvent, { type: "response.create" }> | undefined,
  ctx: PlanContext,
): ResponsePlan {
  const r = ev?.response;
  const mods = r?.output_modalities ?? r?.modalities ?? s.outputModalities;
  // The context's fields one by one, not `...ctx`: an object spread followed by more fields made a new map per added field each time (~7 KB a response).
  return {
    engine: ctx.engine,
    outbox: ctx.outbox,
    conversation: ctx.conversation,
    beta: ctx.beta,
    principal: ctx.principal,
    ticket: ctx.ticket,
    onEnd: ctx.onEnd,
    textModel: s.profile.text,
    ttsModel: s.profile.tts,
    audio: mods.includes("audio"),
    instructions: r?.instructions ?? s.instructions,
    voice: r?.audio?.output?.voice ?? r?.voice ?? s.voice,
    speed: s.speed,
    outputFormat: s.outputFormat,
    maxOutputTokens: r?.max_output_tokens ?? s.maxOutputTokens,
    temperature: s.temperature,
    metadata: r?.metadata ?? null,
    addToConversation: r?.conversation !== "none",
    tools: (r?.tools ?? s.tools).map((t) => ({
      name: t.name,
      description: t.description ?? "",
      parameters: t.parameters ?? { type: "object", properties: {} },
      strict: false,
    })),
    toolChoice: toolChoiceName(r?.tool_choice ?? s.toolChoice),
  };
}
