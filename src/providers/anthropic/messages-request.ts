import type { GenerateRequest, Message } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";

/** An Anthropic content block as sent upstream. */
type Block = Record<string, unknown>;

/** An Anthropic message: a role and its content blocks. */
interface AnthropicMessage {
  role: "user" | "assistant";
  content: Block[];
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** Converts an OpenAI chat image part (`image_url`) into an Anthropic image block. */
function imageBlock(url: string, at: string): Block {
  const m = DATA_URL.exec(url);
  if (m) return { type: "image", source: { type: "base64", media_type: m[1], data: m[2] } };
  if (/^https?:\/\//.test(url)) return { type: "image", source: { type: "url", url } };
  throw invalidArgument(`Invalid '${at}': Anthropic models take images as http(s) URLs or base64 data: URLs.`, at);
}

/** A message's content as blocks: text, and images from chat parts; empty text is left out. */
function contentBlocks(m: Message, i: number): Block[] {
  if (m.parts.length === 0) return m.content ? [{ type: "text", text: m.content }] : [];
  return m.parts.flatMap((p: Record<string, unknown>, j): Block[] => {
    const at = `messages[${i}].content[${j}]`;
    const type = p["type"];
    if (type === "text") return typeof p["text"] === "string" && p["text"] ? [{ type: "text", text: p["text"] }] : [];
    if (type === "image_url") {
      const image = p["image_url"] as { url?: unknown } | string | undefined;
      const url = typeof image === "string" ? image : image?.url;
      if (typeof url === "string") return [imageBlock(url, at)];
    }
    throw invalidArgument(`Invalid '${at}.type': content of type '${String(type)}' is not supported by Anthropic models.`, `${at}.type`);
  });
}

function toolUseBlocks(m: Message, i: number): Block[] {
  return m.toolCalls.map((c, j) => {
    let input: unknown = {};
    if (c.arguments.trim()) {
      try {
        input = JSON.parse(c.arguments);
      } catch {
        input = undefined;
      }
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      const at = `messages[${i}].tool_calls[${j}].function.arguments`;
      throw invalidArgument(`Invalid '${at}': Anthropic models need tool call arguments as a JSON object.`, at);
    }
    return { type: "tool_use", id: c.id, name: c.name, input };
  });
}

/**
 * Converts chat messages into Anthropic's shape: system and developer
 * messages become the top-level `system`; `tool` messages become
 * `tool_result` blocks of a user turn; assistant tool calls become
 * `tool_use` blocks; consecutive turns of one role are merged, since
 * Anthropic wants user and assistant turns to alternate.
 */
export function anthropicMessages(messages: readonly Message[]): { system: string; messages: AnthropicMessage[] } {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  const push = (role: "user" | "assistant", content: Block[]): void => {
    if (content.length === 0) return;
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...content);
    else out.push({ role, content });
  };
  messages.forEach((m, i) => {
    switch (m.role) {
      case "system":
      case "developer":
        if (m.content) system.push(m.content);
        break;
      case "assistant":
        push("assistant", [...contentBlocks(m, i), ...toolUseBlocks(m, i)]);
        break;
      case "tool":
        push("user", [{ type: "tool_result", tool_use_id: m.toolCallId, content: m.content }]);
        break;
      default:
        push("user", contentBlocks(m, i));
    }
  });
  return { system: system.join("\n\n"), messages: out };
}

function toolChoice(req: GenerateRequest): Block | undefined {
  const noParallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  switch (req.toolChoice) {
    case "":
      return req.parallelToolCalls === false ? { type: "auto", ...noParallel } : undefined;
    case "auto":
      return { type: "auto", ...noParallel };
    case "required":
      return { type: "any", ...noParallel };
    case "none":
      return { type: "none" };
    default:
      return { type: "tool", name: req.toolChoice, ...noParallel };
  }
}

/**
 * Builds the body of Anthropic's `POST /v1/messages`, always streamed.
 * `max_tokens` (required by Anthropic) is the request's or `defaultMaxTokens`;
 * a legacy prompt becomes one user message. `user` becomes `metadata.user_id`;
 * other chat-only fields in `extra` (`response_format`, `seed`, …) have no
 * Anthropic counterpart and are not sent.
 */
export function messagesBody(model: string, req: GenerateRequest, defaultMaxTokens: number): Record<string, unknown> {
  const source = req.messages.length > 0 ? req.messages : [{ role: "user", content: req.prompt, parts: [], toolCalls: [], toolCallId: "", name: "", contents: [], toolError: false }];
  const { system, messages } = anthropicMessages(source);
  const body: Record<string, unknown> = { model, max_tokens: req.maxTokens ?? defaultMaxTokens, messages, stream: true };
  if (system) body["system"] = system;
  if (req.temperature !== undefined) body["temperature"] = req.temperature;
  if (req.topP !== undefined) body["top_p"] = req.topP;
  if (req.stop.length > 0) body["stop_sequences"] = req.stop;
  const user: unknown = req.extra?.["user"];
  if (typeof user === "string" && user) body["metadata"] = { user_id: user };
  if (req.tools.length > 0) {
    body["tools"] = req.tools.map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      input_schema: { type: "object", properties: {}, ...t.parameters },
    }));
  }
  const choice = req.tools.length > 0 ? toolChoice(req) : undefined;
  if (choice) body["tool_choice"] = choice;
  return body;
}
