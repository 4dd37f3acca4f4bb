import { z } from "zod";
import type { Message } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError, invalidArgument } from "../../engine/errors.js";
import { fieldPath } from "./validation.js";

/**
 * Validates `value` against `schema`; a failure is a 400 whose `param` is
 * the field's full path, `prefix` included (`input[2].call_id`).
 */
export function validateAt<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const rest = fieldPath(issue.path);
  const param = rest ? (rest.startsWith("[") ? `${prefix}${rest}` : `${prefix}.${rest}`) : prefix;
  const missing = issue.code === "invalid_type" && issue.input === undefined;
  throw new SpillwayError(
    Code.InvalidArgument,
    missing ? `Missing required parameter: '${param}'.` : `Invalid '${param}': ${issue.message}`,
    { param, openAiCode: missing ? "missing_required_parameter" : "invalid_value" },
  );
}

const part = z.looseObject({ type: z.string().min(1) });
const messageItem = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(part)]),
});
const functionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});
const functionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(part)]),
});

const inputText = z.looseObject({ type: z.enum(["input_text", "output_text"]), text: z.string() });
const refusal = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });
const inputImage = z.looseObject({
  type: z.literal("input_image"),
  image_url: z.string().min(1, "Spillway stores no files: send the image as a URL or a data: URL"),
  detail: z.enum(["low", "high", "auto", "original"]).nullish(),
});
const inputFile = z.looseObject({
  type: z.literal("input_file"),
  file_data: z.string().min(1, "Spillway stores no files: send the file inline as file_data"),
  filename: z.string().optional(),
});
const inputAudio = z.looseObject({
  type: z.literal("input_audio"),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
});

/** A content part in the chat-completions shape the providers already speak. */
type ChatPart = Record<string, unknown>;

/** Converts one Responses content part into text and a chat part. */
function convertPart(p: { type: string }, at: string): { text: string; part: ChatPart } {
  switch (p.type) {
    case "input_text":
    case "output_text": {
      const t = validateAt(inputText, p, at);
      return { text: t.text, part: { type: "text", text: t.text } };
    }
    case "refusal": {
      const r = validateAt(refusal, p, at);
      return { text: r.refusal, part: { type: "text", text: r.refusal } };
    }
    case "input_image": {
      const i = validateAt(inputImage, p, at);
      const image: Record<string, unknown> = { url: i.image_url };
      if (i.detail && i.detail !== "original") image["detail"] = i.detail;
      return { text: "", part: { type: "image_url", image_url: image } };
    }
    case "input_file": {
      const f = validateAt(inputFile, p, at);
      return { text: "", part: { type: "file", file: { file_data: f.file_data, ...(f.filename ? { filename: f.filename } : {}) } } };
    }
    case "input_audio": {
      const a = validateAt(inputAudio, p, at);
      return { text: "", part: { type: "input_audio", input_audio: a.input_audio } };
    }
    default:
      throw invalidArgument(
        `Invalid '${at}.type': unknown content part type '${p.type}' (supported: input_text, output_text, refusal, input_image, input_file, input_audio).`,
        `${at}.type`,
      );
  }
}

/** Text plus non-text parts of a content value, as a Message stores them. */
function convertContent(content: string | ReadonlyArray<{ type: string }>, at: string): { content: string; parts: ChatPart[] } {
  if (typeof content === "string") return { content, parts: [] };
  const converted = content.map((p, j) => convertPart(p, `${at}[${j}]`));
  const parts = converted.map((c) => c.part);
  return {
    content: converted.map((c) => c.text).join(""),
    parts: parts.every((p) => p["type"] === "text") ? [] : parts,
  };
}

function message(role: string, content: string, parts: ChatPart[] = []): Message {
  return { role, content, parts, toolCalls: [], toolCallId: "", name: "", contents: [], toolError: false };
}

const ITEM_TYPES = "message, function_call, function_call_output, reasoning";

/**
 * Converts the `input` of a Responses request into the engine's messages:
 * message items become messages; `function_call` items become the tool calls
 * of an assistant message (consecutive calls share one, as chat expects);
 * `function_call_output` items become `tool` messages and must answer a call
 * made earlier in `input`. `reasoning` items are dropped (they only matter to
 * the upstream that made them). Anything else is a 400 naming the item.
 */
export function inputMessages(input: string | readonly unknown[]): Message[] {
  if (typeof input === "string") return [message("user", input)];
  const out: Message[] = [];
  const callIds = new Set<string>();
  input.forEach((raw, i) => {
    const at = `input[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalidArgument(`Invalid '${at}': an input item must be an object.`, at);
    const type = (raw as { type?: unknown }).type ?? "message";
    switch (type) {
      case "message": {
        const m = validateAt(messageItem, raw, at);
        const c = convertContent(m.content, `${at}.content`);
        out.push(message(m.role, c.content, c.parts));
        break;
      }
      case "function_call": {
        const f = validateAt(functionCallItem, raw, at);
        callIds.add(f.call_id);
        const last = out.at(-1);
        const call = { id: f.call_id, name: f.name, arguments: f.arguments };
        if (last?.role === "assistant") last.toolCalls.push(call);
        else out.push({ ...message("assistant", ""), toolCalls: [call] });
        break;
      }
      case "function_call_output": {
        const o = validateAt(functionCallOutputItem, raw, at);
        if (!callIds.has(o.call_id)) {
          throw invalidArgument(
            `Invalid '${at}.call_id': '${o.call_id}' does not answer any function_call item earlier in 'input' (Spillway keeps no conversation state: send the function_call items too).`,
            `${at}.call_id`,
          );
        }
        const c = convertContent(o.output, `${at}.output`);
        out.push({ ...message("tool", c.content, c.parts), toolCallId: o.call_id });
        break;
      }
      case "reasoning":
        break;
      case "item_reference":
        throw invalidArgument(`Invalid '${at}.type': item references need stored responses, which Spillway does not keep.`, `${at}.type`);
      default:
        throw invalidArgument(
          `Invalid '${at}.type': unsupported input item type ${JSON.stringify(type)} (supported: ${ITEM_TYPES}).`,
          `${at}.type`,
        );
    }
  });
  return out;
}
