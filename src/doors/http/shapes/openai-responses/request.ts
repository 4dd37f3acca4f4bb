import { z } from "zod";
import type { GenerateRequest, ReasoningConfig, ResponseFormat, Tool } from "../../../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../../../gen/spillway/v1/request.js";
import { makeMessage } from "../../../../engine/requests.js";
import { invalidArgument } from "../../../../engine/errors.js";
import { inputMessages } from "./input.js";
import { checkToolSchema } from "../tool-schema.js";
import { validate, validateAt } from "../../validation.js";

const functionTool = z.looseObject({
  type: z.literal("function"),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "function names are 1-64 letters, digits, _ or -"),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), name: z.string().min(1) }),
]);

const textFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    name: z.string().min(1),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
    strict: z.boolean().nullish(),
  }),
]);

/** The body of `POST /v1/responses`, as far as Spillway checks it. */
export const responsesSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.unknown())]),
  instructions: z.string().nullish(),
  stream: z.boolean().nullish(),
  max_output_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  tools: z.array(z.looseObject({ type: z.string() })).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  text: z.looseObject({ format: textFormat.optional() }).nullish(),
  reasoning: z.looseObject({ effort: z.string().nullish(), summary: z.string().nullish() }).nullish(),
  service_tier: z.string().nullish(),
  user: z.string().nullish(),
  /** Spillway extension, as on chat: model ids to try in order if `model` fails before its first chunk. */
  fallbacks: z.array(z.string().includes("/", "fallbacks are 'provider/model' ids")).max(5).nullish(),
  previous_response_id: z.string().min(1).nullish(),
  conversation: z.null().optional(),
  prompt: z.null().optional(),
  store: z.boolean().nullish(),
  background: z.boolean().nullish(),
});

type ResponsesBody = z.output<typeof responsesSchema>;

/** What a Response object echoes of its request (OpenAI's `Response` fields). */
export interface ResponseEcho {
  readonly instructions: string | null;
  readonly tools: ReadonlyArray<Record<string, unknown>>;
  readonly toolChoice: unknown;
  readonly parallelToolCalls: boolean;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly maxOutputTokens: number | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly text: Readonly<Record<string, unknown>>;
  readonly user: string | null;
  /** The request's `reasoning` settings, or null. */
  readonly reasoning: { effort: string | null; summary: string | null } | null;
  readonly background: boolean;
  readonly store: boolean;
  readonly previousResponseId: string | null;
}

/** A validated Responses request, normalized for the engine. */
export interface ParsedResponses {
  readonly request: GenerateRequest;
  readonly stream: boolean;
  /** Per-request fallback model ids, when given. */
  readonly fallbacks: readonly string[] | undefined;
  readonly echo: ResponseEcho;
  /** This request's input items, normalized (`type` and `id` on each), as `input_items` lists them. */
  readonly inputItems: Array<Record<string, unknown>>;
}

/** Fields that need stored state, which a stateless gateway cannot honour. */
const STATEFUL: Record<string, string> = {
  conversation: "Spillway keeps no conversations: use 'previous_response_id', or send the whole conversation in 'input'",
  prompt: "Spillway keeps no stored prompts: send 'instructions' and 'input'",
};

function checkStateless(body: unknown): void {
  const b = body as Record<string, unknown> | null;
  if (typeof b !== "object" || b === null) return;
  for (const [k, why] of Object.entries(STATEFUL)) {
    const v = b[k];
    if (v !== undefined && v !== null && v !== false) throw invalidArgument(`Unsupported parameter: '${k}': ${why}.`, k);
  }
}

function toolsOf(b: ResponsesBody): { tools: Tool[]; echo: Array<Record<string, unknown>> } {
  const tools: Tool[] = [];
  const echo: Array<Record<string, unknown>> = [];
  const names = new Set<string>();
  (b.tools ?? []).forEach((raw, i) => {
    const at = `tools[${i}]`;
    if (raw.type !== "function") {
      throw invalidArgument(`Invalid '${at}.type': Spillway supports only 'function' tools, got '${raw.type}'.`, `${at}.type`);
    }
    const t = validateAt(functionTool, raw, at);
    if (names.has(t.name)) throw invalidArgument(`Invalid '${at}.name': duplicate function name '${t.name}'.`, `${at}.name`);
    names.add(t.name);
    checkToolSchema(t.parameters, `${at}.parameters`);
    tools.push({ name: t.name, description: t.description ?? "", parameters: t.parameters ?? undefined, strict: t.strict === true });
    echo.push({ type: "function", name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null });
  });
  return { tools, echo };
}

/** `text.format` as the engine's typed response format. */
function formatOf(b: ResponsesBody): ResponseFormat | undefined {
  const f = b.text?.format;
  if (!f) return undefined;
  const base = { name: "", description: "", schema: undefined, strict: false };
  if (f.type === "text") return { ...base, type: ResponseFormat_Type.TYPE_TEXT };
  if (f.type === "json_object") return { ...base, type: ResponseFormat_Type.TYPE_JSON_OBJECT };
  return { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: f.name, description: f.description ?? "", schema: f.schema, strict: f.strict === true };
}

/** `reasoning` as the engine's typed reasoning settings. */
function reasoningOf(b: ResponsesBody): ReasoningConfig | undefined {
  const r = b.reasoning;
  if (!r?.effort && !r?.summary) return undefined;
  return { effort: r.effort ?? "", budgetTokens: 0, summary: r.summary ?? "", disabled: false };
}

/**
 * Validates a `POST /v1/responses` body and turns it into the engine's
 * GenerateRequest: `instructions` become a leading system message (the role
 * every OpenAI-compatible server knows), `input` becomes messages (see
 * {@link inputMessages}), `max_output_tokens` the token limit. `history`
 * (the items of a `previous_response_id` chain: its inputs and outputs) goes
 * before `input`; `instructions` are never carried over, as with OpenAI.
 * `conversation` and `prompt` are refused with a 400 naming them; `background`
 * without `store` too.
 */
export function parseResponses(body: unknown, history: readonly unknown[] = [], idPrefix = ""): ParsedResponses {
  checkStateless(body);
  const b = validate(responsesSchema, body);
  if (b.background === true && b.store === false) {
    throw invalidArgument("Invalid 'store': background responses must be stored ('store' must not be false with 'background': true).", "store");
  }
  const messages = inputMessages(history.length > 0 ? [...history, ...(typeof b.input === "string" ? [{ role: "user", content: b.input }] : b.input)] : b.input);
  if (b.instructions) messages.unshift(makeMessage({ role: "system", content: b.instructions }));
  if (messages.length === 0) throw invalidArgument("Invalid 'input': must contain at least one message.", "input");
  const { tools, echo: toolsEcho } = toolsOf(b);
  const choice = b.tool_choice;
  if (typeof choice === "object" && choice && !tools.some((t) => t.name === choice.name)) {
    throw invalidArgument(`Invalid 'tool_choice.name': no function named '${choice.name}' is in 'tools'.`, "tool_choice.name");
  }
  const request: GenerateRequest = {
    model: b.model,
    messages,
    prompt: "",
    tools,
    toolChoice: typeof choice === "string" ? choice : choice ? choice.name : "",
    maxTokens: b.max_output_tokens ?? undefined,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    stop: [],
    parallelToolCalls: b.parallel_tool_calls ?? undefined,
    responseFormat: formatOf(b),
    reasoning: reasoningOf(b),
    user: b.user ?? "",
    metadata: b.metadata ?? {},
    serviceTier: b.service_tier ?? "",
    upstreamHeaders: {},
  };
  const echo: ResponseEcho = {
    instructions: b.instructions ?? null,
    tools: toolsEcho,
    toolChoice: choice ?? "auto",
    parallelToolCalls: b.parallel_tool_calls ?? true,
    temperature: b.temperature ?? null,
    topP: b.top_p ?? null,
    maxOutputTokens: b.max_output_tokens ?? null,
    metadata: b.metadata ?? {},
    text: b.text?.format ? { format: b.text.format } : { format: { type: "text" } },
    user: b.user ?? null,
    reasoning: b.reasoning ? { effort: b.reasoning.effort ?? null, summary: b.reasoning.summary ?? null } : null,
    background: b.background === true,
    store: b.store !== false,
    previousResponseId: b.previous_response_id ?? null,
  };
  // A background generation streams upstream (a recorder consumes it, and a cancel stops it mid-way).
  request.stream = b.stream === true || b.background === true;
  return { request, stream: b.stream === true, fallbacks: b.fallbacks ?? undefined, echo, inputItems: normalizeItems(b.input, idPrefix) };
}

/** Input items as stored: a string is one user message; each item gets its `type` and an `id`. */
function normalizeItems(input: string | readonly unknown[], idPrefix: string): Array<Record<string, unknown>> {
  const raw: unknown[] = typeof input === "string" ? [{ type: "message", role: "user", content: [{ type: "input_text", text: input }] }] : [...input];
  return raw.map((item, i) => {
    const it = { ...(item as Record<string, unknown>) };
    it["type"] ??= "message";
    if (it["type"] === "message") {
      if (typeof it["content"] === "string") it["content"] = [{ type: it["role"] === "assistant" ? "output_text" : "input_text", text: it["content"] }];
      it["status"] ??= "completed";
    }
    if (typeof it["id"] !== "string") it["id"] = `${it["type"] === "message" ? "msg" : "item"}_${idPrefix}_in${i}`;
    return it;
  });
}
