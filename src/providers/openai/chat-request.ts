import { ResponseFormat_Type, type GenerateRequest, type Message, type ReasoningConfig, type ResponseFormat } from "../../gen/spillway/v1/request.js";
import { familyExtra } from "../shared/request-fields.js";
import { chatContent } from "./openai-content.js";

/** An OpenAI chat message as sent upstream. */
type OpenAiMessage = Record<string, unknown>;

function toOpenAiMessage(m: Message, i: number): OpenAiMessage {
  const out: OpenAiMessage = { role: m.role, content: chatContent(m, i) };
  if (m.name) out["name"] = m.name;
  if (m.toolCallId) out["tool_call_id"] = m.toolCallId;
  if (m.toolCalls.length > 0) {
    out["tool_calls"] = m.toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.arguments },
    }));
    if (out["content"] === "") out["content"] = null;
  }
  return out;
}

function toolChoice(choice: string): unknown {
  if (!choice || choice === "auto" || choice === "none" || choice === "required") return choice || undefined;
  return { type: "function", function: { name: choice } };
}

/**
 * The effort an OpenAI model is asked for: the request's `effort`, or, when
 * only a token budget was given (an Anthropic-shaped request), the effort
 * that budget reads as — up to 1024 tokens `low`, up to 8192 `medium`, more
 * `high`. Nothing when reasoning was not asked for or was turned off (an
 * OpenAI model that cannot turn it off would refuse `none`).
 */
export function reasoningEffort(r: ReasoningConfig | undefined): string | undefined {
  if (!r || r.disabled) return undefined;
  if (r.effort) return r.effort;
  if (r.budgetTokens <= 0) return undefined;
  return r.budgetTokens <= 1024 ? "low" : r.budgetTokens <= 8192 ? "medium" : "high";
}

/** The JSON-schema part shared by chat's `response_format.json_schema` and Responses' `text.format`. */
export function jsonSchemaFormat(f: ResponseFormat): Record<string, unknown> {
  return {
    name: f.name || "response",
    ...(f.description ? { description: f.description } : {}),
    schema: f.schema ?? { type: "object" },
    ...(f.strict ? { strict: true } : {}),
  };
}

function responseFormat(f: ResponseFormat | undefined): unknown {
  switch (f?.type) {
    case ResponseFormat_Type.TYPE_TEXT:
      return { type: "text" };
    case ResponseFormat_Type.TYPE_JSON_OBJECT:
      return { type: "json_object" };
    case ResponseFormat_Type.TYPE_JSON_SCHEMA:
      return { type: "json_schema", json_schema: jsonSchemaFormat(f) };
    default:
      return undefined;
  }
}

/**
 * Streamed requests get streaming with usage in the last chunk; a client
 * waiting for the whole answer (`stream: false`) gets a non-streamed request.
 */
function streamFields(req: GenerateRequest): Record<string, unknown> {
  return req.stream === false ? { stream: false } : { stream: true, stream_options: { include_usage: true } };
}

/**
 * The fields chat and legacy completions share: `extra.openai` first (the
 * OpenAI-shaped leftovers, as they came), then the typed fields over it.
 */
function commonFields(req: GenerateRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { ...familyExtra(req, "openai") };
  const usesNewName = body["max_completion_tokens"] !== undefined;
  if (req.maxTokens !== undefined && !usesNewName) body["max_tokens"] = req.maxTokens;
  if (req.temperature !== undefined) body["temperature"] = req.temperature;
  if (req.topP !== undefined) body["top_p"] = req.topP;
  if (req.stop.length > 0) body["stop"] = req.stop;
  if (req.seed !== undefined) body["seed"] = req.seed;
  if (req.presencePenalty !== undefined) body["presence_penalty"] = req.presencePenalty;
  if (req.frequencyPenalty !== undefined) body["frequency_penalty"] = req.frequencyPenalty;
  if (req.user) body["user"] = req.user;
  return body;
}

/**
 * Builds the upstream body of `POST /chat/completions` from a normalized
 * request: always streamed, always with usage. Typed content becomes chat
 * content parts (see openai-content.ts), `response_format` and reasoning
 * their chat fields (`reasoning_effort`, see {@link reasoningEffort});
 * `top_k`, cache markers, reasoning blocks and `tool_error` have no chat
 * counterpart and are not sent. `extra.openai` passes through as is.
 */
export function chatCompletionsBody(model: string, req: GenerateRequest): Record<string, unknown> {
  // Assigned, not `{ ...common, more }`: Node 20's V8 takes a slow path for a spread followed by more properties.
  const body = commonFields(req);
  body["model"] = model;
  body["messages"] = req.messages.map(toOpenAiMessage);
  Object.assign(body, streamFields(req));
  if (Object.keys(req.metadata).length > 0) body["metadata"] = req.metadata;
  if (req.serviceTier) body["service_tier"] = req.serviceTier;
  const format = responseFormat(req.responseFormat);
  if (format) body["response_format"] = format;
  const effort = reasoningEffort(req.reasoning);
  if (effort) body["reasoning_effort"] = effort;
  if (req.tools.length > 0) {
    body["tools"] = req.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        ...(t.parameters ? { parameters: t.parameters } : {}),
        ...(t.strict ? { strict: true } : {}),
      },
    }));
    if (req.parallelToolCalls !== undefined) body["parallel_tool_calls"] = req.parallelToolCalls;
  }
  const choice = toolChoice(req.toolChoice);
  if (choice !== undefined) body["tool_choice"] = choice;
  return body;
}

/** Builds the upstream body of the legacy `POST /completions`. */
export function completionsBody(model: string, req: GenerateRequest): Record<string, unknown> {
  const body = commonFields(req);
  body["model"] = model;
  body["prompt"] = req.prompt;
  return Object.assign(body, streamFields(req));
}
