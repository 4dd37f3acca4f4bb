import { z } from "zod";
import type { ContentPart, GenerateRequest, Message, ResponseFormat, Tool } from "../../../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../../../engine/errors.js";
import { audioPart, filePart, imagePart, joinedText, textPart } from "../openai/content.js";
import { checkToolSchema } from "../tool-schema.js";
import { extraFields, validate } from "../../validation.js";
import { fastChatBody } from "./fast-body.js";

const chatPart = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text"), text: z.string() }),
  z.looseObject({ type: z.literal("image_url"), image_url: z.looseObject({ url: z.string().min(1), detail: z.string().nullish() }) }),
  z.looseObject({ type: z.literal("input_audio"), input_audio: z.looseObject({ data: z.string(), format: z.string().min(1) }) }),
  z.looseObject({
    type: z.literal("file"),
    file: z.looseObject({ file_data: z.string().optional(), file_id: z.string().optional(), filename: z.string().optional() }),
  }),
  z.looseObject({ type: z.literal("refusal"), refusal: z.string() }),
]);
const content = z.union([z.string(), z.array(chatPart), z.null()]);

const responseFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string().min(1),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

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
  user: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  seed: z.number().int().nullish(),
  service_tier: z.string().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
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
  response_format: responseFormat.nullish(),
  reasoning_effort: z.string().nullish(),
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
/** Every field the chat schema checks (the fast path's view of it). */
const CHAT_SCHEMA_KEYS: ReadonlySet<string> = new Set(Object.keys(chatCompletionSchema.shape));
CHAT_KEYS.delete("max_completion_tokens");
COMPLETION_KEYS.delete("max_completion_tokens");

type ChatBody = z.output<typeof chatCompletionSchema>;
type ChatMessage = ChatBody["messages"][number];

type ChatPart = z.output<typeof chatPart>;

function contentPart(p: ChatPart, at: string): ContentPart {
  switch (p.type) {
    case "text":
      return textPart(p.text);
    case "image_url":
      return imagePart(p.image_url.url, p.image_url.detail);
    case "input_audio":
      return audioPart(p.input_audio.data, p.input_audio.format);
    case "file":
      return filePart(p.file, `${at}.file`);
    case "refusal":
      return { part: { $case: "refusal", value: p.refusal } };
  }
}

function messageOf(m: ChatMessage, i: number, callIds: Set<string>): Message {
  let text = "";
  let contents: ContentPart[] = [];
  if (typeof m.content === "string") text = m.content;
  else if (Array.isArray(m.content)) {
    contents = m.content.map((p, j) => contentPart(p, `messages[${i}].content[${j}]`));
    text = joinedText(contents);
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
    parts: [],
    toolCalls,
    toolCallId: m.tool_call_id ?? "",
    name: m.name ?? "",
    contents,
    toolError: false,
  };
}

/** The engine's response format for OpenAI's `response_format`. */
export function responseFormatOf(f: z.output<typeof responseFormat> | null | undefined): ResponseFormat | undefined {
  if (!f) return undefined;
  const base = { name: "", description: "", schema: undefined, strict: false };
  switch (f.type) {
    case "text":
      return Object.assign(base, { type: ResponseFormat_Type.TYPE_TEXT });
    case "json_object":
      return Object.assign(base, { type: ResponseFormat_Type.TYPE_JSON_OBJECT });
    case "json_schema":
      return {
        type: ResponseFormat_Type.TYPE_JSON_SCHEMA,
        name: f.json_schema.name,
        description: f.json_schema.description ?? "",
        schema: f.json_schema.schema,
        strict: f.json_schema.strict === true,
      };
  }
}

function commonOf(b: z.output<typeof completionSchema> | ChatBody, known: ReadonlySet<string>) {
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  // Fields nothing typed covers go to OpenAI-compatible upstreams as they came.
  const rest = extraFields(b, known);
  return {
    model: b.model,
    maxTokens,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    stop: typeof b.stop === "string" ? [b.stop] : (b.stop ?? []),
    extra: rest ? { openai: rest } : undefined,
    user: b.user ?? "",
    metadata: b.metadata ?? {},
    seed: b.seed ?? undefined,
    serviceTier: b.service_tier ?? "",
    presencePenalty: b.presence_penalty ?? undefined,
    frequencyPenalty: b.frequency_penalty ?? undefined,
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
  // The common body is checked by hand; anything else (invalid bodies included) by zod, with its messages.
  const b = fastChatBody<ChatBody>(body, CHAT_SCHEMA_KEYS) ?? validate(chatCompletionSchema, body);
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
  // Object.assign, not `{ ...c, more }`: Node 20's V8 takes a slow path for a spread followed by more properties (~2 µs here).
  const request: GenerateRequest = Object.assign(commonOf(b, CHAT_KEYS), {
    messages,
    prompt: "",
    tools,
    toolChoice: typeof choice === "string" ? choice : choice ? choice.function.name : "",
    parallelToolCalls: b.parallel_tool_calls ?? undefined,
    responseFormat: responseFormatOf(b.response_format),
    reasoning: b.reasoning_effort ? { effort: b.reasoning_effort, budgetTokens: 0, summary: "", disabled: false } : undefined,
  });
  if (typeof choice === "object" && choice && !tools.some((t) => t.name === choice.function.name)) {
    throw invalidArgument(`Invalid 'tool_choice': no tool named '${choice.function.name}' is in 'tools'.`, "tool_choice");
  }
  request.stream = b.stream === true;
  return { request, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, fallbacks: b.fallbacks ?? undefined };
}

/** Validates a legacy completions body and normalizes it for the engine. */
export function parseCompletion(body: unknown): ParsedGenerate {
  const b = validate(completionSchema, body);
  const prompt = typeof b.prompt === "string" ? b.prompt : b.prompt[0]!;
  const request: GenerateRequest = Object.assign(commonOf(b, COMPLETION_KEYS), {
    messages: [],
    prompt,
    tools: [],
    toolChoice: "",
    parallelToolCalls: undefined,
  });
  if (!prompt) throw invalidArgument("Invalid 'prompt': must not be empty.", "prompt");
  request.stream = b.stream === true;
  return { request, stream: b.stream === true, includeUsage: b.stream_options?.include_usage === true, fallbacks: b.fallbacks ?? undefined };
}
