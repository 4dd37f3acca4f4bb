import type { ContentPart, GenerateRequest, Message, ResponseFormat } from "../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { makeMessage } from "../../engine/requests.js";
import { toolCallObjects } from "../shared/request-fields.js";
import { toolTurnLacksThinking } from "../shared/thinking-turns.js";

/** A Converse content block, system block or tool as sent upstream. */
type Block = Record<string, unknown>;

interface ConverseMessage {
  role: "user" | "assistant";
  content: Block[];
}

/** The request body and what the stream mapper must know about it. */
export interface ConverseRequest {
  readonly body: Record<string, unknown>;
  /**
   * The name of the tool that carries JSON output (response_format): its
   * input is the answer, streamed as text. Converse has no JSON mode, so a
   * schema is asked for as a tool the model must call.
   */
  readonly jsonTool: string | undefined;
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;
const IMAGE_FORMATS: Readonly<Record<string, string>> = { "image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp" };
const DOC_FORMATS: Readonly<Record<string, string>> = {
  "application/pdf": "pdf",
  "text/csv": "csv",
  "text/plain": "txt",
  "text/markdown": "md",
  "text/html": "html",
  "application/msword": "doc",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
  "application/vnd.ms-excel": "xls",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
};
/** A prompt-caching point (Anthropic `cache_control`): cache everything up to here. */
const CACHE_POINT: Block = { cachePoint: { type: "default" } };

/** Reasoning budgets for an effort given without a budget (Claude's minimum is 1024). */
const EFFORT_BUDGET: Readonly<Record<string, number>> = { minimal: 1024, low: 1024, medium: 4096, high: 16_384 };

/** True for Anthropic's Claude models (ids, regional inference profiles and ARNs). */
export function isClaude(model: string): boolean {
  return /anthropic\.claude/.test(model);
}

function imageBlock(mediaType: string, data: Uint8Array | string, at: string): Block {
  const format = IMAGE_FORMATS[mediaType.toLowerCase()];
  if (!format) throw invalidArgument(`Invalid '${at}': Bedrock takes png, jpeg, gif or webp images, not '${mediaType || "unknown"}'.`, at);
  const bytes = typeof data === "string" ? data : Buffer.from(data).toString("base64");
  return { image: { format, source: { bytes } } };
}

function imageFromUrl(url: string, at: string): Block {
  const m = DATA_URL.exec(url);
  if (!m) throw invalidArgument(`Invalid '${at}': Bedrock takes images as inline bytes (base64 data: URLs), not by URL.`, at);
  return imageBlock(m[1]!, m[2]!, at);
}

function documentBlock(mediaType: string, data: Uint8Array, filename: string, at: string): Block {
  const format = DOC_FORMATS[mediaType.toLowerCase()];
  if (!format || data.length === 0) throw invalidArgument(`Invalid '${at}': Bedrock takes documents as inline bytes of pdf, csv, doc, docx, xls, xlsx, html, txt or md.`, at);
  // Bedrock allows letters, digits, whitespace, hyphens, parentheses and square brackets in names.
  const name = (filename.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9\s\-()[\]]/g, " ").replace(/\s+/g, " ").trim() || "document").slice(0, 200);
  return { document: { format, name, source: { bytes: Buffer.from(data).toString("base64") } } };
}

/** Converse blocks of one typed content part; blank text is left out (Bedrock rejects it). */
function partBlocks(p: ContentPart, at: string, role: string): Block[] {
  const part = p.part;
  switch (part?.$case) {
    case "text":
    case "refusal":
      return part.value.trim() ? [{ text: part.value }] : [];
    case "image":
      if (part.value.data.length > 0) return [imageBlock(part.value.mediaType, part.value.data, at)];
      return [imageFromUrl(part.value.url, at)];
    case "file":
      if (part.value.text) return part.value.text.trim() ? [{ text: part.value.text }] : [];
      return [documentBlock(part.value.mediaType, part.value.data, part.value.filename, at)];
    case "reasoning": {
      if (role !== "assistant") return [];
      if (part.value.encrypted) return [{ reasoningContent: { redactedContent: part.value.encrypted } }];
      const text: Record<string, string> = { text: part.value.text };
      if (part.value.signature) text["signature"] = part.value.signature;
      return [{ reasoningContent: { reasoningText: text } }];
    }
    case "inputAudio":
      throw invalidArgument(`Invalid '${at}': Bedrock's Converse API takes no audio input.`, at);
    default:
      return [];
  }
}

/** A message's content blocks: typed `contents` (with their cache points), else its text. */
function contentBlocks(m: Message, i: number): Block[] {
  if (m.contents.length > 0) {
    return m.contents.flatMap((p, j) => {
      const blocks = partBlocks(p, `messages[${i}].content[${j}]`, m.role);
      return p.cacheControl && blocks.length > 0 ? [...blocks, CACHE_POINT] : blocks;
    });
  }
  return m.content.trim() ? [{ text: m.content }] : [];
}

function toolUseBlocks(m: Message, i: number): Block[] {
  return toolCallObjects(m, i, "Bedrock").map(({ id, name, input }) => ({ toolUse: { toolUseId: id, name, input } }));
}

function toolResultBlock(m: Message, i: number): Block {
  const text = m.contents.length > 0 ? m.contents.map((p) => (p.part?.$case === "text" ? p.part.value : "")).join("") : m.content;
  const result: Record<string, unknown> = { toolUseId: m.toolCallId, content: text.trim() ? [{ text }] : [{ json: {} }] };
  if (m.toolError) result["status"] = "error";
  if (!m.toolCallId) throw invalidArgument(`Missing required parameter: 'messages[${i}].tool_call_id'.`, `messages[${i}].tool_call_id`);
  return { toolResult: result };
}

/**
 * Converts chat messages into Converse's shape: system and developer text
 * becomes `system`; `tool` messages become `toolResult` blocks of a user
 * turn; assistant tool calls `toolUse` blocks and reasoning parts
 * `reasoningContent`; consecutive turns of one role are merged (Converse
 * wants them to alternate) and blank text is left out (Bedrock rejects it),
 * with a message left empty by that. The first turn must be the user's.
 */
export function converseMessages(messages: readonly Message[]): { system: Block[]; messages: ConverseMessage[]; usesTools: Set<string> } {
  const system: Block[] = [];
  const out: ConverseMessage[] = [];
  const usesTools = new Set<string>();
  const push = (role: "user" | "assistant", content: Block[], i: number): void => {
    // Bedrock rejects blank text: a message with nothing else is left out.
    if (content.length === 0) return;
    if (out.length === 0 && role !== "user") {
      throw invalidArgument(`Invalid 'messages[${i}].role': a Bedrock conversation must start with a user message.`, `messages[${i}].role`);
    }
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...content);
    else out.push({ role, content });
  };
  messages.forEach((m, i) => {
    switch (m.role) {
      case "system":
      case "developer": {
        const text = m.contents.length > 0 ? m.contents.map((p) => (p.part?.$case === "text" ? p.part.value : "")).join("") : m.content;
        if (text.trim()) system.push({ text });
        break;
      }
      case "assistant": {
        for (const c of m.toolCalls) usesTools.add(c.name);
        push("assistant", [...contentBlocks(m, i), ...toolUseBlocks(m, i)], i);
        break;
      }
      case "tool":
        push("user", [toolResultBlock(m, i)], i);
        break;
      default:
        push("user", contentBlocks(m, i), i);
    }
  });
  if (out.length === 0) throw invalidArgument("Invalid 'messages': a Bedrock conversation needs at least one user message.", "messages");
  return { system, messages: out, usesTools };
}

function jsonToolOf(f: ResponseFormat | undefined): Block | undefined {
  if (!f || (f.type !== ResponseFormat_Type.TYPE_JSON_SCHEMA && f.type !== ResponseFormat_Type.TYPE_JSON_OBJECT)) return undefined;
  const schema = f.type === ResponseFormat_Type.TYPE_JSON_SCHEMA && f.schema ? f.schema : { type: "object" };
  return {
    toolSpec: {
      name: f.name || "json_output",
      description: f.description || "Answer with JSON matching this schema; the tool's input is the whole answer.",
      inputSchema: { json: schema },
    },
  };
}

/**
 * Builds the body of `POST /model/{modelId}/converse-stream` (and
 * `/converse`): messages, `system`, `inferenceConfig` (maxTokens,
 * temperature, topP, stopSequences), `toolConfig` (always sent when the
 * conversation holds tool calls or results: Bedrock requires it, so tools
 * used earlier but not offered now are declared with an open schema),
 * JSON output as a forced tool (see {@link ConverseRequest.jsonTool}),
 * `cache_control` marks as `cachePoint` blocks (after the part, the tool or
 * the system prompt), a legacy prompt as one user turn, and for Claude
 * models `top_k` and extended thinking (`thinking.budget_tokens`, from the
 * request's budget or its effort; left off inside a tool loop whose last
 * assistant turn has no signed reasoning, {@link toolTurnLacksThinking}) in
 * `additionalModelRequestFields`.
 * Throws `InvalidArgument` naming the field for what Converse cannot carry.
 */
export function converseBody(model: string, req: GenerateRequest): ConverseRequest {
  // A legacy completions prompt is asked as one user turn.
  const chat = req.messages.length > 0 ? req.messages : [makeMessage({ role: "user", content: req.prompt })];
  const { system, messages, usesTools } = converseMessages(chat);
  const body: Record<string, unknown> = { messages };
  if (system.length > 0 && req.systemCacheControl) system.push(CACHE_POINT);
  if (system.length > 0) body["system"] = system;

  const inference: Record<string, unknown> = {};
  if (req.maxTokens !== undefined) inference["maxTokens"] = req.maxTokens;
  if (req.temperature !== undefined) inference["temperature"] = req.temperature;
  if (req.topP !== undefined) inference["topP"] = req.topP;
  if (req.stop.length > 0) inference["stopSequences"] = req.stop;
  if (Object.keys(inference).length > 0) body["inferenceConfig"] = inference;

  const jsonTool = jsonToolOf(req.responseFormat);
  const jsonName = jsonTool ? ((jsonTool["toolSpec"] as { name: string }).name) : undefined;
  // `none` offers no tool; tools the conversation already used stay declared (Bedrock requires it).
  const offered = req.toolChoice === "none" ? [] : req.tools;
  const spec = (name: string, description: string, parameters: unknown): Block => ({
    toolSpec: { name, ...(description ? { description } : {}), inputSchema: { json: parameters ?? { type: "object", properties: {} } } },
  });
  const tools: Block[] = [];
  for (const t of offered) {
    tools.push(spec(t.name, t.description, t.parameters));
    if (t.cacheControl) tools.push(CACHE_POINT);
  }
  for (const name of usesTools) {
    if (offered.some((t) => t.name === name)) continue;
    tools.push(spec(name, "", req.tools.find((t) => t.name === name)?.parameters));
  }
  if (jsonTool) tools.push(jsonTool);
  if (tools.length > 0) {
    const toolConfig: Record<string, unknown> = { tools };
    if (jsonName && offered.length === 0) toolConfig["toolChoice"] = { tool: { name: jsonName } };
    else if (req.toolChoice === "required") toolConfig["toolChoice"] = { any: {} };
    else if (req.toolChoice && req.toolChoice !== "auto" && req.toolChoice !== "none") toolConfig["toolChoice"] = { tool: { name: req.toolChoice } };
    else if (req.toolChoice === "auto") toolConfig["toolChoice"] = { auto: {} };
    body["toolConfig"] = toolConfig;
  }

  const additional: Record<string, unknown> = {};
  if (isClaude(model)) {
    const r = req.reasoning;
    const budget = r && !r.disabled ? r.budgetTokens || EFFORT_BUDGET[r.effort] || 0 : 0;
    // As on Anthropic's API: inside a tool loop whose last assistant turn has no signed reasoning, Claude refuses thinking.
    if (budget > 0 && !toolTurnLacksThinking(req.messages, (r) => !!r.signature || !!r.encrypted)) additional["thinking"] = { type: "enabled", budget_tokens: budget };
    if (req.topK !== undefined) additional["top_k"] = req.topK;
  }
  if (Object.keys(additional).length > 0) body["additionalModelRequestFields"] = additional;
  return { body, jsonTool: jsonName };
}
