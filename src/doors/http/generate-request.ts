import { z } from "zod";
import type { GenerateRequest, Message, Tool } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { checkToolSchema } from "./tool-schema.js";
import { extraFields, validate } from "./validation.js";

const textPart = z.looseObject({ type: z.literal("text"), text: z.string() });
const anyPart = z.looseObject({ type: z.string().min(1) });
const content = z.union([z.string(), z.array(z.union([textPart, anyPart])), z.null()]);

const toolCall = z.looseObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

const message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: content.optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).nullish(),
  tool_call_id: z.string().optional(),
});

const tool = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "function names are 1-64 letters, digits, _ or -"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

const sampling = {
  model: z.string().min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.literal(1, "only n=1 is supported").nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  /** Spillway extension: model ids to try in order if `model` fails before its first chunk. */
  fallbacks: z.array(z.string().includes("/", "fallbacks are 'provider/model' ids")).max(5).nullish(),
};

/** The body of `POST /v1/chat/completions`, as far as Spillway checks it. */
export const chatCompletionSchema = z.looseObject({
  ...sampling,
  messages: z.array(message).min(1),
  tools: z.array(tool).nullish(),
  tool_choice: z
    .union([
      z.enum(["none", "auto", "required"]),
      z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string().min(1) }) }),
    ])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});

/** The body of `POST /v1/completions`. */
export const completionSchema = z.looseObject({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1, "only one prompt per request is supported")]),
});

const CHAT_KEYS = new Set([
  ...Object.keys(chatCompletionSchema.shape),
  // Handled by the door, never sent upstream as is.
]);
const COMPLETION_KEYS = new Set(Object.keys(completionSchema.shape));
CHAT_KEYS.delete("max_completion_tokens");
COMPLETION_KEYS.delete("max_completion_tokens");

type ChatBody = z.output<typeof chatCompletionSchema>;
type ChatMessage = ChatBody["messages"][number];

function messageOf(m: ChatMessage, i: number, callIds: Set<string>): Message {
  let text = "";
  let parts: Array<Record<string, unknown>> = [];
  if (typeof m.content === "string") text = m.content;
  else if (Array.isArray(m.content)) {
    parts = m.content;
    text = m.content.map((p) => (p.type === "text" && typeof p["text"] === "string" ? p["text"] : "")).join("");
    if (parts.every((p) => p["type"] === "text")) parts = [];
  }
  if (m.role === "tool") {
    if (!m.tool_call_id) throw invalidArgument(`Missing required parameter: 'messages[${i}].tool_call_id'.`, `messages[${i}].tool_call_id`);
    if (!callIds.has(m.tool_call_id)) {
      throw invalidArgument(
        `Invalid 'messages[${i}].tool_call_id': '${m.tool_call_id}' does not answer any tool call of an earlier assistant message.`,
        `messages[${i}].tool_call_id`,
      );
    }
  }
  const toolCalls = (m.tool_calls ?? []).map((c) => {
    callIds.add(c.id);
    return { id: c.id, name: c.function.name, arguments: c.function.arguments };
  });
  return {
    role: m.role,
    content: text,
    parts,
    toolCalls,
    toolCallId: m.tool_call_id ?? "",
    name: m.name ?? "",
    contents: [],
    toolError: false,
  };
}

function commonOf(b: z.output<typeof completionSchema> | ChatBody, known: ReadonlySet<string>) {
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  const extra = extraFields(b, known);
  return {
    model: b.model,
    maxTokens,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    stop: typeof b.stop === "string" ? [b.stop] : (b.stop ?? []),
    extra,
    user: "",
    metadata: {},
    serviceTier: "",
    upstreamHeaders: {},
  };
}

/** A validated request plus how the client wants it answered. */
export interface ParsedGenerate {
  readonly request: GenerateRequest;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** Per-request fallback model ids, when given. */
  readonly fallbacks: readonly string[] | undefined;
}

/** Validates a chat completions body and normalizes it for the engine. */
export function parseChatCompletion(body: unknown): ParsedGenerate {
  const b = validate(chatCompletionSchema, body);
  const callIds = new Set<string>();
  const messages = b.messages.map((m, i) => messageOf(m, i, callIds));
  b.tools?.forEach((t, i) => checkToolSchema(t.function.parameters, `tools[${i}].function.parameters`));
  const tools: Tool[] = (b.tools ?? []).map((t) => ({
    name: t.function.name,
    description: t.function.description ?? "",
    parameters: t.function.parameters,
    strict: t.function.strict ?? false,
  }));
  const choice = b.tool_choice;
  const c = commonOf(b, CHAT_KEYS);
  const request: GenerateRequest = {
    ...c,
    messages,
    prompt: "",
    tools,
    toolChoice: typeof choice === "string" ? choice : choice ? choice.function.name : "",
    parallelToolCalls: b.parallel_tool_calls ?? undefined,
  };
  if (typeof choice === "object" && choice && !tools.some((t) => t.name === choice.function.name)) {
    throw invalidArgument(`Invalid 'tool_choice': no tool named '${choice.function.name}' is in 'tools'.`, "tool_choice");
  }
  return { request, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, fallbacks: b.fallbacks ?? undefined };
}

/** Validates a legacy completions body and normalizes it for the engine. */
export function parseCompletion(body: unknown): ParsedGenerate {
  const b = validate(completionSchema, body);
  const prompt = typeof b.prompt === "string" ? b.prompt : b.prompt[0]!;
  const request: GenerateRequest = {
    ...commonOf(b, COMPLETION_KEYS),
    messages: [],
    prompt,
    tools: [],
    toolChoice: "",
    parallelToolCalls: undefined,
  };
  if (!prompt) throw invalidArgument("Invalid 'prompt': must not be empty.", "prompt");
  return { request, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, fallbacks: b.fallbacks ?? undefined };
}
