import type { GenerateRequest, Message } from "../../gen/spillway/v1/request.js";

/** An OpenAI chat message as sent upstream. */
type OpenAiMessage = Record<string, unknown>;

function toOpenAiMessage(m: Message): OpenAiMessage {
  const out: OpenAiMessage = { role: m.role, content: m.parts.length > 0 ? m.parts : m.content };
  if (m.name) out["name"] = m.name;
  if (m.toolCallId) out["tool_call_id"] = m.toolCallId;
  if (m.toolCalls.length > 0) {
    out["tool_calls"] = m.toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.arguments },
    }));
    if (!m.content && m.parts.length === 0) out["content"] = null;
  }
  return out;
}

function toolChoice(choice: string): unknown {
  if (!choice || choice === "auto" || choice === "none" || choice === "required") return choice || undefined;
  return { type: "function", function: { name: choice } };
}

/** Fields every streamed request gets: streaming with usage in the last chunk. */
const STREAM_FIELDS = { stream: true, stream_options: { include_usage: true } } as const;

function commonFields(req: GenerateRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { ...req.extra };
  const usesNewName = body["max_completion_tokens"] !== undefined;
  if (req.maxTokens !== undefined && !usesNewName) body["max_tokens"] = req.maxTokens;
  if (req.temperature !== undefined) body["temperature"] = req.temperature;
  if (req.topP !== undefined) body["top_p"] = req.topP;
  if (req.stop.length > 0) body["stop"] = req.stop;
  return body;
}

/**
 * Builds the upstream body of `POST /chat/completions` from a normalized
 * request: always streamed, always with usage; fields the engine does not
 * model (`seed`, `response_format`, …) pass through from `extra`.
 */
export function chatCompletionsBody(model: string, req: GenerateRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    ...commonFields(req),
    model,
    messages: req.messages.map(toOpenAiMessage),
    ...STREAM_FIELDS,
  };
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
  return { ...commonFields(req), model, prompt: req.prompt, ...STREAM_FIELDS };
}
