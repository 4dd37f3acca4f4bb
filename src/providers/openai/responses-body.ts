import type { GenerateRequest, Message } from "../../gen/spillway/v1/request.js";

/** A Responses API input item as sent upstream. */
type Item = Record<string, unknown>;

/**
 * Request fields (from the engine's `extra`) that the Responses API takes
 * as they are, and chat fields it takes under another shape. Any other
 * extra field is chat-only, and the request goes to `/chat/completions`.
 */
const PASSED_AS_IS = new Set(["user", "metadata", "service_tier", "prompt_cache_key", "safety_identifier", "top_logprobs"]);
const TRANSLATED = new Set(["response_format", "reasoning_effort"]);

/**
 * Whether a request can go to an upstream's `/responses`: it is a chat
 * (not a legacy prompt), has no stop sequences (the Responses API has none)
 * and no chat-only extra fields.
 */
export function fitsResponsesApi(req: GenerateRequest): boolean {
  if (req.messages.length === 0 || req.stop.length > 0) return false;
  return Object.keys(req.extra ?? {}).every((k) => PASSED_AS_IS.has(k) || TRANSLATED.has(k));
}

/** Converts a chat content part back into a Responses input part. */
function inputPart(p: Record<string, unknown>, role: string): Item {
  switch (p["type"]) {
    case "text":
      return { type: role === "assistant" ? "output_text" : "input_text", text: p["text"] };
    case "image_url": {
      const image = p["image_url"] as { url?: unknown; detail?: unknown } | undefined;
      return { type: "input_image", image_url: image?.url, detail: image?.detail ?? "auto" };
    }
    case "file": {
      const file = (p["file"] ?? {}) as Record<string, unknown>;
      return { type: "input_file", ...file };
    }
    default:
      return p;
  }
}

function itemsOf(m: Message): Item[] {
  if (m.role === "tool") return [{ type: "function_call_output", call_id: m.toolCallId, output: m.content }];
  const out: Item[] = [];
  const parts = m.parts as Array<Record<string, unknown>>;
  if (parts.length > 0) out.push({ type: "message", role: m.role, content: parts.map((p) => inputPart(p, m.role)) });
  else if (m.content || m.toolCalls.length === 0) out.push({ type: "message", role: m.role, content: m.content });
  for (const c of m.toolCalls) out.push({ type: "function_call", call_id: c.id, name: c.name, arguments: c.arguments });
  return out;
}

function toolChoice(choice: string): unknown {
  if (!choice || choice === "auto" || choice === "none" || choice === "required") return choice || undefined;
  return { type: "function", name: choice };
}

/** Maps chat's `response_format` to the Responses API's `text.format`. */
function textFormat(rf: unknown): unknown {
  const f = (rf ?? {}) as Record<string, unknown>;
  if (f["type"] === "json_schema") return { type: "json_schema", ...(f["json_schema"] as Record<string, unknown>) };
  return f["type"] ? { type: f["type"] } : undefined;
}

/**
 * Builds the body of an upstream `POST /responses` from a normalized
 * request: messages become input items (tool calls → `function_call`,
 * tool messages → `function_call_output`), tools are function tools with
 * `strict` explicit (the Responses API would default it to true), and
 * `store` is false: Spillway keeps the conversation with the client.
 */
export function responsesBody(model: string, req: GenerateRequest): Record<string, unknown> {
  const extra: Record<string, unknown> = req.extra ?? {};
  const body: Record<string, unknown> = {};
  for (const k of PASSED_AS_IS) if (extra[k] !== undefined) body[k] = extra[k];
  const format = textFormat(extra["response_format"]);
  if (format) body["text"] = { format };
  if (extra["reasoning_effort"] !== undefined) body["reasoning"] = { effort: extra["reasoning_effort"] };
  Object.assign(body, { model, input: req.messages.flatMap(itemsOf), stream: true, store: false });
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
