import { z } from "zod";
import type { CacheControl, ContentPart, FilePart, GenerateRequest, Message, ResponseFormat, Tool, ToolCall } from "../../../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../../../engine/errors.js";
import { makeMessage } from "../../../../engine/requests.js";
import { checkToolSchema } from "../tool-schema.js";
import { extraFields, validate } from "../../validation.js";
import { ANTHROPIC_UPSTREAM_HEADERS } from "./shape.js";
import type { RequestHeaders } from "../shape.js";

const cacheControl = z.looseObject({ type: z.string().min(1), ttl: z.string().optional() }).nullish();

/** A string is shorthand for one text block (`content`, `system`, `tool_result.content`). */
const asBlocks = (v: unknown): unknown => (typeof v === "string" ? [{ type: "text", text: v }] : v);

const textBlock = z.looseObject({ type: z.literal("text"), text: z.string(), cache_control: cacheControl });

const imageBlock = z.looseObject({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.looseObject({ type: z.literal("base64"), media_type: z.enum(["image/jpeg", "image/png", "image/gif", "image/webp"]), data: z.string().min(1) }),
    z.looseObject({ type: z.literal("url"), url: z.string().regex(/^https?:\/\//, "an http(s) URL") }),
  ]),
  cache_control: cacheControl,
});

const documentBlock = z.looseObject({
  type: z.literal("document"),
  source: z.discriminatedUnion("type", [
    z.looseObject({ type: z.literal("base64"), media_type: z.string().min(1), data: z.string().min(1) }),
    z.looseObject({ type: z.literal("text"), media_type: z.string().optional(), data: z.string() }),
    z.looseObject({ type: z.literal("url"), url: z.string().regex(/^https?:\/\//, "an http(s) URL") }),
    z.looseObject({ type: z.literal("file"), file_id: z.string().min(1) }),
    z.looseObject({ type: z.literal("content"), content: z.preprocess(asBlocks, z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))) }),
  ]),
  title: z.string().nullish(),
  context: z.string().nullish(),
  citations: z.looseObject({ enabled: z.boolean().optional() }).nullish(),
  cache_control: cacheControl,
});

const toolResultBlock = z.looseObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z.preprocess(asBlocks, z.array(z.discriminatedUnion("type", [textBlock, imageBlock, documentBlock]))).optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

const block = z.discriminatedUnion("type", [
  textBlock,
  imageBlock,
  documentBlock,
  z.looseObject({ type: z.literal("tool_use"), id: z.string().min(1), name: z.string().min(1), input: z.record(z.string(), z.unknown()), cache_control: cacheControl }),
  toolResultBlock,
  z.looseObject({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().optional() }),
  z.looseObject({ type: z.literal("redacted_thinking"), data: z.string().min(1) }),
]);

const message = z.looseObject({
  role: z.enum(["user", "assistant"]),
  content: z.preprocess(asBlocks, z.array(block)),
});

const tool = z.looseObject({
  type: z.string().optional(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,128}$/, "tool names are 1-128 letters, digits, _ or -"),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
  cache_control: cacheControl,
  strict: z.boolean().optional(),
});

const toolChoice = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("tool"), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("none") }),
]);

/** `enabled` (with `budget_tokens`), `disabled`, or a newer kind (`adaptive`, …) that goes to Anthropic upstreams as it came. */
const thinking = z.looseObject({
  type: z.string().min(1),
  budget_tokens: z.number().int().min(1024, "budget_tokens must be at least 1024").optional(),
});

const fields = {
  model: z.string().min(1),
  system: z.preprocess(asBlocks, z.array(textBlock)).optional(),
  messages: z.array(message).min(1),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stop_sequences: z.array(z.string()).optional(),
  thinking: thinking.optional(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).optional(),
  service_tier: z.string().optional(),
  output_config: z.looseObject({ format: z.looseObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) }).nullish() }).optional(),
  /** Spillway extension (as on the OpenAI routes): model ids to try in order if `model` fails before its first chunk. */
  fallbacks: z.array(z.string().includes("/", "fallbacks are 'provider/model' ids")).max(5).optional(),
};

/** The body of `POST /v1/messages`, as far as Spillway checks it (unknown fields pass to Anthropic upstreams). */
export const messagesSchema = z.looseObject({ ...fields, max_tokens: z.number().int().min(1), stream: z.boolean().optional() });

/** The body of `POST /v1/messages/count_tokens`: a Messages body without `max_tokens` and `stream`. */
export const countTokensSchema = z.looseObject(fields);

/** Fields with a typed home (or handled by the door); the rest go to `extra.anthropic`. */
const TYPED = new Set([...Object.keys(messagesSchema.shape)].filter((k) => k !== "output_config"));

type Body = z.output<typeof countTokensSchema>;
type Block = z.output<typeof block>;
type WireMessage = Body["messages"][number];

function cacheOf(c: z.output<typeof cacheControl>): CacheControl | undefined {
  return c ? { type: c.type, ttl: c.ttl ?? "" } : undefined;
}

function part(p: ContentPart["part"], cc?: z.output<typeof cacheControl>): ContentPart {
  const c = cacheOf(cc);
  return c ? { part: p, cacheControl: c } : { part: p };
}

function filePart(f: Partial<FilePart>): FilePart {
  return { url: "", data: Buffer.alloc(0), mediaType: "", filename: "", fileId: "", text: "", title: "", context: "", citations: false, ...f };
}

type DocumentBlock = z.output<typeof documentBlock>;

function documentPart(b: DocumentBlock): ContentPart {
  const s = b.source;
  const meta = { title: b.title ?? "", context: b.context ?? "", citations: b.citations?.enabled === true };
  let file: FilePart;
  switch (s.type) {
    case "base64":
      file = filePart({ ...meta, data: Buffer.from(s.data, "base64"), mediaType: s.media_type });
      break;
    case "text":
      file = filePart({ ...meta, text: s.data, mediaType: s.media_type ?? "text/plain" });
      break;
    case "url":
      file = filePart({ ...meta, url: s.url });
      break;
    case "file":
      file = filePart({ ...meta, fileId: s.file_id });
      break;
    case "content":
      // Custom-content documents keep their text; their block structure is not kept.
      file = filePart({ ...meta, text: s.content.map((c) => c.text ?? "").join("\n"), mediaType: "text/plain" });
      break;
  }
  return part({ $case: "file", value: file }, b.cache_control);
}

/** Text, image and document blocks as typed parts (what user turns and tool results hold). */
function plainPart(b: Block): ContentPart | undefined {
  switch (b.type) {
    case "text":
      return part({ $case: "text", value: b.text }, b.cache_control);
    case "image": {
      const s = b.source;
      const image =
        s.type === "base64"
          ? { url: "", data: Buffer.from(s.data, "base64"), mediaType: s.media_type, detail: "" }
          : { url: s.url, data: Buffer.alloc(0), mediaType: "", detail: "" };
      return part({ $case: "image", value: image }, b.cache_control);
    }
    case "document":
      return documentPart(b);
    default:
      return undefined;
  }
}

function joined(parts: readonly ContentPart[]): string {
  let out = "";
  for (const p of parts) if (p.part?.$case === "text") out += p.part.value;
  return out;
}

/**
 * A `tool_result` block as a `tool` message: its content as parts, `is_error`
 * as `tool_error`; a `cache_control` on the block itself moves to its last
 * part (the cached prefix ends at the same place).
 */
function toolResultMessage(b: z.output<typeof toolResultBlock>, at: string, callIds: ReadonlySet<string>): Message {
  if (!callIds.has(b.tool_use_id)) {
    throw invalidArgument(`Invalid '${at}.tool_use_id': '${b.tool_use_id}' does not answer any tool_use block of an earlier assistant message.`, `${at}.tool_use_id`);
  }
  const contents = (b.content ?? []).map((c) => plainPart(c)!);
  const cc = cacheOf(b.cache_control);
  if (cc) {
    if (contents.length === 0) contents.push({ part: { $case: "text", value: "" } });
    contents[contents.length - 1] = { ...contents.at(-1)!, cacheControl: cc };
  }
  return makeMessage({ role: "tool", toolCallId: b.tool_use_id, content: joined(contents), contents, toolError: b.is_error === true });
}

/**
 * One Anthropic message as engine messages. A user turn's `tool_result`
 * blocks become `tool` messages first (OpenAI wants them right after the
 * calls), then its other blocks one user message. An assistant turn is one
 * message: thinking / redacted thinking as reasoning parts and text in
 * order, `tool_use` blocks as its tool calls.
 */
function messagesOf(m: WireMessage, i: number, callIds: Set<string>): Message[] {
  const at = (j: number): string => `messages[${i}].content[${j}]`;
  if (m.role === "assistant") {
    const contents: ContentPart[] = [];
    const toolCalls: ToolCall[] = [];
    m.content.forEach((b, j) => {
      switch (b.type) {
        case "tool_use":
          callIds.add(b.id);
          toolCalls.push({ id: b.id, name: b.name, arguments: JSON.stringify(b.input) });
          break;
        case "thinking":
          contents.push({ part: { $case: "reasoning", value: { text: b.thinking, signature: b.signature ?? "", encrypted: "", summary: false, id: "" } } });
          break;
        case "redacted_thinking":
          contents.push({ part: { $case: "reasoning", value: { text: "", signature: "", encrypted: b.data, summary: false, id: "" } } });
          break;
        case "text":
          contents.push(plainPart(b)!);
          break;
        default:
          throw invalidArgument(`Invalid '${at(j)}.type': an assistant message cannot hold a '${b.type}' block.`, `${at(j)}.type`);
      }
    });
    return [makeMessage({ role: "assistant", content: joined(contents), contents, toolCalls })];
  }
  const out: Message[] = [];
  const contents: ContentPart[] = [];
  m.content.forEach((b, j) => {
    if (b.type === "tool_result") out.push(toolResultMessage(b, at(j), callIds));
    else if (b.type === "tool_use" || b.type === "thinking" || b.type === "redacted_thinking") {
      throw invalidArgument(`Invalid '${at(j)}.type': a user message cannot hold a '${b.type}' block.`, `${at(j)}.type`);
    } else contents.push(plainPart(b)!);
  });
  if (contents.length > 0 || out.length === 0) out.push(makeMessage({ role: "user", content: joined(contents), contents }));
  return out;
}

/** The tools: custom tools typed; Anthropic server tools (`web_search_…`, …) pass to Anthropic upstreams when they are the only tools. */
function toolsOf(b: Body): { tools: Tool[]; serverTools: unknown[] | undefined } {
  const tools: Tool[] = [];
  const server: unknown[] = [];
  (b.tools ?? []).forEach((t, i) => {
    if (t.type && t.type !== "custom") {
      server.push(t);
      return;
    }
    if (!t.input_schema) throw invalidArgument(`Missing required parameter: 'tools[${i}].input_schema'.`, `tools[${i}].input_schema`);
    checkToolSchema(t.input_schema, `tools[${i}].input_schema`);
    const cc = cacheOf(t.cache_control);
    tools.push({ name: t.name, description: t.description ?? "", parameters: t.input_schema, strict: t.strict === true, ...(cc ? { cacheControl: cc } : {}) });
  });
  if (server.length > 0 && tools.length > 0) {
    const i = (b.tools ?? []).findIndex((t) => t.type && t.type !== "custom");
    throw invalidArgument(`Invalid 'tools[${i}].type': Spillway cannot mix Anthropic server tools ('${b.tools![i]!.type}') with custom tools in one request.`, `tools[${i}].type`);
  }
  return { tools, serverTools: server.length > 0 ? server : undefined };
}

function responseFormatOf(b: Body): ResponseFormat | undefined {
  const f = b.output_config?.format;
  if (!f) return undefined;
  return { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "output", description: "", schema: f.schema, strict: true };
}

/** `extra.anthropic`: what nothing typed covers (server tools, `thinking` kinds other than enabled/disabled, `output_config` minus its format, …). */
function anthropicExtra(b: Body, serverTools: unknown[] | undefined): Record<string, unknown> | undefined {
  const rest = extraFields(b, TYPED) ?? {};
  if (serverTools) rest["tools"] = serverTools;
  if (b.thinking && b.thinking.type !== "enabled" && b.thinking.type !== "disabled") rest["thinking"] = b.thinking;
  if (b.output_config) {
    const { format: _format, ...others } = b.output_config;
    if (Object.keys(others).length > 0) rest["output_config"] = others;
    else delete rest["output_config"];
  }
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/** A validated Messages request plus how the client wants it answered. */
export interface ParsedMessages {
  readonly request: GenerateRequest;
  readonly stream: boolean;
  /** Per-request fallback model ids, when given. */
  readonly fallbacks: readonly string[] | undefined;
}

/** The engine request of a validated body (shared by messages and count_tokens). */
function requestOf(b: Body, headers: RequestHeaders, maxTokens: number | undefined): GenerateRequest {
  const callIds = new Set<string>();
  const messages: Message[] = [];
  if (b.system && b.system.length > 0) {
    const contents = b.system.map((s) => part({ $case: "text", value: s.text }, s.cache_control));
    messages.push(makeMessage({ role: "system", content: joined(contents), contents }));
  }
  b.messages.forEach((m, i) => messages.push(...messagesOf(m, i, callIds)));
  const { tools, serverTools } = toolsOf(b);
  const choice = b.tool_choice;
  if (choice?.type === "tool" && !tools.some((t) => t.name === choice.name)) {
    throw invalidArgument(`Invalid 'tool_choice.name': no tool named '${choice.name}' is in 'tools'.`, "tool_choice.name");
  }
  const upstreamHeaders: Record<string, string> = {};
  for (const h of ANTHROPIC_UPSTREAM_HEADERS) if (headers[h]) upstreamHeaders[h] = headers[h]!;
  const extra = anthropicExtra(b, serverTools);
  const t = b.thinking;
  if (t?.type === "enabled" && t.budget_tokens === undefined) {
    throw invalidArgument("Missing required parameter: 'thinking.budget_tokens'.", "thinking.budget_tokens");
  }
  return {
    model: b.model,
    messages,
    prompt: "",
    tools,
    toolChoice: !choice ? "" : choice.type === "tool" ? choice.name : choice.type === "any" ? "required" : choice.type,
    parallelToolCalls: choice && "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use === true ? false : undefined,
    maxTokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    stop: b.stop_sequences ?? [],
    extra: extra ? { anthropic: extra } : undefined,
    responseFormat: responseFormatOf(b),
    reasoning:
      t?.type === "enabled"
        ? { effort: "", budgetTokens: t.budget_tokens ?? 0, summary: "", disabled: false }
        : t?.type === "disabled"
          ? { effort: "", budgetTokens: 0, summary: "", disabled: true }
          : undefined,
    user: b.metadata?.user_id ?? "",
    metadata: {},
    serviceTier: b.service_tier ?? "",
    upstreamHeaders,
  };
}

/**
 * Validates a `POST /v1/messages` body and turns it into the engine's
 * request: `system` as a system message (its blocks' `cache_control` kept
 * per part), content blocks as typed parts (text, images by base64 or URL,
 * documents by base64 / text / URL / file id with title, context and
 * citations, thinking with its signature, redacted thinking as `encrypted`,
 * cache markers), `tool_use` as tool calls, `tool_result` as tool messages
 * (`is_error` → `tool_error`), `tools[].input_schema` as parameters,
 * `tool_choice` (auto / any → `required` / tool → its name / none;
 * `disable_parallel_tool_use` → `parallel_tool_calls: false`),
 * `stop_sequences`, `top_k`, `thinking` (enabled + budget → `reasoning`,
 * disabled → `reasoning.disabled`), `metadata.user_id` → `user`,
 * `output_config.format` → `response_format`, the `anthropic-version` and
 * `anthropic-beta` headers → `upstream_headers`, and every other field under
 * `extra.anthropic` for Anthropic upstreams. A bad field is a 400 naming it.
 */
export function parseMessages(body: unknown, headers: RequestHeaders): ParsedMessages {
  const b = validate(messagesSchema, body);
  const request = requestOf(b, headers, b.max_tokens);
  // A client that waits for the whole answer lets providers ask for it whole.
  request.stream = b.stream === true;
  return { request, stream: b.stream === true, fallbacks: b.fallbacks };
}

/** Validates a `POST /v1/messages/count_tokens` body; the request is what `messages` would send. */
export function parseCountTokens(body: unknown, headers: RequestHeaders): GenerateRequest {
  return requestOf(validate(countTokensSchema, body), headers, undefined);
}
