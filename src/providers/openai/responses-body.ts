import { ResponseFormat_Type, type GenerateRequest, type Message, type ResponseFormat } from "../../gen/spillway/v1/request.js";
import { familyExtra } from "../shared/request-fields.js";
import { jsonSchemaFormat, reasoningEffort } from "./chat-request.js";
import { responsesPart } from "./openai-content.js";

/** A Responses API input item as sent upstream. */
type Item = Record<string, unknown>;

/**
 * `extra.openai` fields the Responses API takes as they are. Any other
 * `extra.openai` field is chat-only, and the request goes to `/chat/completions`.
 */
const PASSED_AS_IS = new Set(["prompt_cache_key", "safety_identifier", "top_logprobs", "truncation", "prompt_cache_retention"]);

/**
 * Whether a request can go to an upstream's `/responses`: it is a chat (not
 * a legacy prompt) with no field the Responses API lacks — stop sequences,
 * `seed`, penalties, audio input — and no chat-only `extra.openai` field.
 */
export function fitsResponsesApi(req: GenerateRequest): boolean {
  if (req.messages.length === 0 || req.stop.length > 0) return false;
  if (req.seed !== undefined || req.presencePenalty !== undefined || req.frequencyPenalty !== undefined) return false;
  if (req.messages.some((m) => m.contents.some((p) => p.part?.$case === "inputAudio"))) return false;
  return Object.keys(familyExtra(req, "openai")).every((k) => PASSED_AS_IS.has(k));
}

/**
 * An earlier turn's reasoning as a Responses `reasoning` item. Only items
 * the OpenAI Responses API made (they have an `rs_…` id) go back; reasoning
 * of other upstreams (Anthropic thinking, with its signature) means nothing to it.
 */
function reasoningItems(m: Message): Item[] {
  return m.contents.flatMap((p): Item[] => {
    if (p.part?.$case !== "reasoning" || !p.part.value.id) return [];
    const r = p.part.value;
    const item: Item = { type: "reasoning", id: r.id, summary: r.summary && r.text ? [{ type: "summary_text", text: r.text }] : [] };
    if (!r.summary && r.text) item["content"] = [{ type: "reasoning_text", text: r.text }];
    if (r.encrypted) item["encrypted_content"] = r.encrypted;
    return [item];
  });
}

/** A message's typed parts as Responses input parts (those it has a form for); `i` is the message's index, for errors. */
function partsOf(m: Message, i: number, role: string): Item[] {
  return m.contents.flatMap((p, j) => {
    const part = responsesPart(p, role, `messages[${i}].content[${j}]`);
    return part ? [part] : [];
  });
}

function itemsOf(m: Message, i: number): Item[] {
  if (m.role === "tool") {
    // A function_call_output takes a string, or input parts when the result carries images or files.
    const parts = partsOf(m, i, "user");
    const output = m.contents.length === 0 ? m.content : parts.every((p) => p["type"] === "input_text") ? parts.map((p) => p["text"]).join("") : parts;
    return [{ type: "function_call_output", call_id: m.toolCallId, output }];
  }
  const out: Item[] = reasoningItems(m);
  const parts = partsOf(m, i, m.role);
  // Text alone goes as a string: the one form every role takes (an assistant's
  // history as `output_text` parts is not an input form in OpenAI's schema).
  const textOnly = parts.every((p) => p["type"] === "input_text" || p["type"] === "output_text");
  if (parts.length > 0 && textOnly) out.push({ type: "message", role: m.role, content: parts.map((p) => p["text"]).join("") });
  else if (parts.length > 0) out.push({ type: "message", role: m.role, content: parts });
  else if (m.contents.length === 0 && (m.content || m.toolCalls.length === 0)) out.push({ type: "message", role: m.role, content: m.content });
  for (const c of m.toolCalls) out.push({ type: "function_call", call_id: c.id, name: c.name, arguments: c.arguments });
  return out;
}

function toolChoice(choice: string): unknown {
  if (!choice || choice === "auto" || choice === "none" || choice === "required") return choice || undefined;
  return { type: "function", name: choice };
}

/** The request's output format as the Responses API's `text.format`. */
function textFormat(f: ResponseFormat | undefined): unknown {
  switch (f?.type) {
    case ResponseFormat_Type.TYPE_TEXT:
      return { type: "text" };
    case ResponseFormat_Type.TYPE_JSON_OBJECT:
      return { type: "json_object" };
    case ResponseFormat_Type.TYPE_JSON_SCHEMA:
      return { type: "json_schema", ...jsonSchemaFormat(f) };
    default:
      return undefined;
  }
}

/**
 * Builds the body of an upstream `POST /responses` from a normalized
 * request: messages become input items (tool calls → `function_call`,
 * tool messages → `function_call_output`, reasoning parts with an OpenAI id
 * → `reasoning` items with their `encrypted_content`), tools are function
 * tools with `strict` explicit (the Responses API would default it to true),
 * and `store` is false: Spillway keeps the conversation with the client. So
 * that reasoning can be carried back without stored state, a request that
 * asks for reasoning (or carries reasoning back) includes
 * `reasoning.encrypted_content`.
 */
export function responsesBody(model: string, req: GenerateRequest): Record<string, unknown> {
  const extra = familyExtra(req, "openai");
  const body: Record<string, unknown> = {};
  for (const k of PASSED_AS_IS) if (extra[k] !== undefined) body[k] = extra[k];
  const format = textFormat(req.responseFormat);
  if (format) body["text"] = { format };
  const effort = reasoningEffort(req.reasoning);
  const summary = req.reasoning && !req.reasoning.disabled ? req.reasoning.summary : "";
  if (effort || summary) body["reasoning"] = { ...(effort ? { effort } : {}), ...(summary ? { summary } : {}) };
  const input = req.messages.flatMap((m, i) => itemsOf(m, i));
  if (body["reasoning"] || input.some((i) => i["type"] === "reasoning")) body["include"] = ["reasoning.encrypted_content"];
  if (req.user) body["user"] = req.user;
  if (Object.keys(req.metadata).length > 0) body["metadata"] = req.metadata;
  if (req.serviceTier) body["service_tier"] = req.serviceTier;
  Object.assign(body, { model, input, stream: true, store: false });
  if (req.maxTokens !== undefined) body["max_output_tokens"] = req.maxTokens;
  if (req.temperature !== undefined) body["temperature"] = req.temperature;
  if (req.topP !== undefined) body["top_p"] = req.topP;
  if (req.tools.length > 0) {
    body["tools"] = req.tools.map((t) => ({
      type: "function",
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parameters: t.parameters ?? { type: "object", properties: {} },
      strict: t.strict,
    }));
    if (req.parallelToolCalls !== undefined) body["parallel_tool_calls"] = req.parallelToolCalls;
  }
  const choice = toolChoice(req.toolChoice);
  if (choice !== undefined) body["tool_choice"] = choice;
  return body;
}
