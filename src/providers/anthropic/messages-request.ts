import type { GenerateRequest, Message, ReasoningConfig } from "../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { makeMessage } from "../../engine/requests.js";
import { familyExtra, toolCallObjects } from "../shared/request-fields.js";
import { toolTurnLacksThinking } from "../shared/thinking-turns.js";
import { type Block, cacheControl, contentBlocks } from "./content-blocks.js";

/** An Anthropic message: a role and its content blocks. */
interface AnthropicMessage {
  role: "user" | "assistant";
  content: Block[];
}

function toolUseBlocks(m: Message, i: number): Block[] {
  return toolCallObjects(m, i, "Anthropic").map(({ id, name, input }) => ({ type: "tool_use", id, name, input }));
}

/**
 * A tool message as a `tool_result` block: its text, or its blocks (text,
 * images, documents) when it carries more than text or a cache marker;
 * `is_error` when the tool failed.
 */
function toolResultBlock(m: Message, i: number): Block {
  const blocks = contentBlocks(m, i);
  const plain = m.contents.length === 0 || blocks.every((b) => b["type"] === "text" && b["cache_control"] === undefined);
  const content = plain ? blocks.map((b) => b["text"] as string).join("") : blocks;
  return { type: "tool_result", tool_use_id: m.toolCallId, content, ...(m.toolError ? { is_error: true } : {}) };
}

/**
 * Converts the engine's messages into Anthropic's shape: system and
 * developer messages become the top-level `system` (text blocks, with their
 * cache markers and `systemCacheControl` on the last; a plain string when
 * there is no marker); `tool` messages become `tool_result` blocks of a
 * user turn; assistant tool calls become `tool_use` blocks after the
 * message's own blocks (thinking first, as the client sent them);
 * consecutive turns of one role are merged, since Anthropic wants user and
 * assistant turns to alternate.
 */
export function anthropicMessages(
  messages: readonly Message[],
  systemCache?: GenerateRequest["systemCacheControl"],
): { system: string | Block[] | undefined; messages: AnthropicMessage[] } {
  const system: Block[] = [];
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
        for (const b of contentBlocks(m, i)) {
          if (b["type"] !== "text") throw invalidArgument(`Invalid 'messages[${i}].content': Anthropic takes only text in the system prompt.`, `messages[${i}].content`);
          system.push(b);
        }
        break;
      case "assistant":
        push("assistant", [...contentBlocks(m, i), ...toolUseBlocks(m, i)]);
        break;
      case "tool":
        push("user", [toolResultBlock(m, i)]);
        break;
      default:
        push("user", contentBlocks(m, i));
    }
  });
  const cc = cacheControl(systemCache);
  if (cc && system.length > 0) system[system.length - 1] = { ...system.at(-1), cache_control: cc };
  if (system.length === 0) return { system: undefined, messages: out };
  const marked = system.some((b) => b["cache_control"] !== undefined);
  return { system: marked ? system : system.map((b) => b["text"] as string).join("\n\n"), messages: out };
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
 * The thinking budget an OpenAI-style effort reads as, when a request gives
 * an effort but no budget: `minimal` and `low` 1024 tokens (Anthropic's
 * least), `medium` 2048, `high` 4096, `xhigh` 8192, `max` 16384 (the figures
 * LiteLLM uses for the same mapping). Unknown efforts read as `medium`.
 */
export const BUDGET_FOR_EFFORT: Readonly<Record<string, number>> = { minimal: 1024, low: 1024, medium: 2048, high: 4096, xhigh: 8192, max: 16384 };

/** Anthropic's least thinking budget. */
const MIN_BUDGET = 1024;

/**
 * Anthropic's `thinking` for the request's reasoning settings, and the
 * `max_tokens` to send with it: `budget_tokens` as given, or the budget of
 * the effort ({@link BUDGET_FOR_EFFORT}); `disabled` (or effort `none`) →
 * `{type: "disabled"}`. Anthropic wants `max_tokens` above the budget: when
 * the client set no `max_tokens`, it becomes the budget plus the default;
 * when it did, an effort's budget is lowered under it (not below 1024),
 * while a budget the client gave is sent as is for Anthropic to judge.
 */
export function thinkingConfig(r: ReasoningConfig | undefined, maxTokens: number | undefined, defaultMaxTokens: number): { thinking?: Block; maxTokens: number } {
  const limit = maxTokens ?? defaultMaxTokens;
  if (!r) return { maxTokens: limit };
  if (r.disabled || r.effort === "none") return { thinking: { type: "disabled" }, maxTokens: limit };
  let budget = r.budgetTokens;
  if (budget <= 0) {
    if (!r.effort) return { maxTokens: limit };
    budget = BUDGET_FOR_EFFORT[r.effort] ?? BUDGET_FOR_EFFORT["medium"]!;
    if (maxTokens !== undefined && budget >= maxTokens) budget = Math.max(MIN_BUDGET, maxTokens - 1);
  }
  const max = maxTokens === undefined && budget >= defaultMaxTokens ? budget + defaultMaxTokens : limit;
  return { thinking: { type: "enabled", budget_tokens: budget }, maxTokens: max };
}

/** Anthropic's own service tiers; OpenAI's (`default`, `flex`, `priority`) have no counterpart and are not sent. */
const SERVICE_TIERS = new Set(["auto", "standard_only"]);

/**
 * Builds the body of Anthropic's `POST /v1/messages`, always streamed, from
 * the typed request: content as blocks (content-blocks.ts: images,
 * documents, thinking with signatures, cache markers), tools with their
 * cache markers, `tool_error` as `is_error`, reasoning as `thinking`
 * ({@link thinkingConfig}; left off inside a tool loop whose last assistant
 * turn has no thinking block to send back, {@link toolTurnLacksThinking}),
 * `user` as `metadata.user_id`, `top_k`, stop
 * sequences, Anthropic's service tiers. A JSON schema `response_format`
 * becomes `output_config.format` (Anthropic's structured outputs); a bare
 * JSON-object format has no Anthropic counterpart and is not sent (no
 * instruction is added to the prompt). `seed`, penalties and `metadata`
 * other than the user are OpenAI's and are not sent. `extra.anthropic`
 * (fields of an Anthropic-shaped request nothing typed covers) is merged
 * first, the typed fields over it. A legacy prompt becomes one user message.
 */
export function messagesBody(model: string, req: GenerateRequest, defaultMaxTokens: number): Record<string, unknown> {
  const source = req.messages.length > 0 ? req.messages : [makeMessage({ role: "user", content: req.prompt })];
  const { system, messages } = anthropicMessages(source, req.systemCacheControl);
  const { thinking, maxTokens } = thinkingConfig(req.reasoning, req.maxTokens, defaultMaxTokens);
  // A client waiting for the whole answer gets a whole (non-streamed) upstream call.
  const body: Record<string, unknown> = { ...familyExtra(req, "anthropic"), model, max_tokens: maxTokens, messages, stream: req.stream !== false };
  if (system !== undefined) body["system"] = system;
  // Inside a tool loop whose last assistant turn lost its thinking block (a chat client), Anthropic refuses thinking: leave it off.
  if (thinking && !(thinking["type"] === "enabled" && toolTurnLacksThinking(source, (r) => !!r.signature || (!!r.encrypted && !r.id)))) body["thinking"] = thinking;
  if (req.temperature !== undefined) body["temperature"] = req.temperature;
  if (req.topP !== undefined) body["top_p"] = req.topP;
  if (req.topK !== undefined) body["top_k"] = req.topK;
  if (req.stop.length > 0) body["stop_sequences"] = req.stop;
  if (req.user) body["metadata"] = { user_id: req.user };
  if (SERVICE_TIERS.has(req.serviceTier)) body["service_tier"] = req.serviceTier;
  const rf = req.responseFormat;
  if (rf?.type === ResponseFormat_Type.TYPE_JSON_SCHEMA) {
    body["output_config"] = { ...(body["output_config"] as Block | undefined), format: { type: "json_schema", schema: rf.schema ?? { type: "object" } } };
  }
  if (req.tools.length > 0) {
    body["tools"] = req.tools.map((t) => {
      const cc = cacheControl(t.cacheControl);
      return {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        input_schema: { type: "object", properties: {}, ...t.parameters },
        ...(t.strict ? { strict: true } : {}),
        ...(cc ? { cache_control: cc } : {}),
      };
    });
  }
  const choice = req.tools.length > 0 ? toolChoice(req) : undefined;
  if (choice) body["tool_choice"] = choice;
  return body;
}
