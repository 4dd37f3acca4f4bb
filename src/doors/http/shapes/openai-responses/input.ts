import { z } from "zod";
import type { ContentPart, Message } from "../../../../gen/spillway/v1/request.js";
import { makeMessage } from "../../../../engine/requests.js";
import { audioPart, filePart, imagePart, joinedText, textPart } from "../openai/content.js";
import { invalidArgument } from "../../../../engine/errors.js";
import { validateAt } from "../../validation.js";
import { readReasoningContent } from "./reasoning-state.js";

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
  file_data: z.string().optional(),
  file_id: z.string().optional(),
  file_url: z.string().optional(),
  filename: z.string().optional(),
});
const reasoningItem = z.looseObject({
  type: z.literal("reasoning"),
  id: z.string().optional(),
  summary: z.array(z.looseObject({ type: z.string(), text: z.string() })).optional(),
  content: z.array(z.looseObject({ type: z.string(), text: z.string() })).nullish(),
  encrypted_content: z.string().nullish(),
});
const inputAudio = z.looseObject({
  type: z.literal("input_audio"),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
});

/** Converts one Responses content part into a typed content part. */
function convertPart(p: { type: string }, at: string): ContentPart {
  switch (p.type) {
    case "input_text":
    case "output_text":
      return textPart(validateAt(inputText, p, at).text);
    case "refusal":
      return { part: { $case: "refusal", value: validateAt(refusal, p, at).refusal } };
    case "input_image": {
      const i = validateAt(inputImage, p, at);
      return imagePart(i.image_url, i.detail && i.detail !== "original" ? i.detail : undefined);
    }
    case "input_file":
      return filePart(validateAt(inputFile, p, at), at);
    case "input_audio": {
      const a = validateAt(inputAudio, p, at);
      return audioPart(a.input_audio.data, a.input_audio.format);
    }
    default:
      throw invalidArgument(
        `Invalid '${at}.type': unknown content part type '${p.type}' (supported: input_text, output_text, refusal, input_image, input_file, input_audio).`,
        `${at}.type`,
      );
  }
}

/** Text plus typed parts of a content value, as a Message stores them. */
function convertContent(content: string | ReadonlyArray<{ type: string }>, at: string): { content: string; contents: ContentPart[] } {
  if (typeof content === "string") return { content, contents: [] };
  const contents = content.map((p, j) => convertPart(p, `${at}[${j}]`));
  return { content: joinedText(contents), contents };
}

function message(role: string, content: string, contents: ContentPart[] = []): Message {
  return makeMessage({ role, content, contents });
}

/**
 * A reasoning item carried back: its summary (or raw) text, id and encrypted
 * content — or, when the content is the gateway's envelope
 * (`reasoning-state.ts`), the signature and data of another provider's block,
 * without the id the gateway made up for it.
 */
function reasoningPart(r: z.output<typeof reasoningItem>): ContentPart {
  const summary = (r.summary ?? []).map((s) => s.text).join("\n\n");
  const raw = (r.content ?? []).map((c) => c.text).join("");
  const carried = readReasoningContent(r.encrypted_content ?? "");
  const state = carried ?? { signature: "", encrypted: r.encrypted_content ?? "" };
  return {
    part: {
      $case: "reasoning",
      value: { text: raw || summary, signature: state.signature, encrypted: state.encrypted, summary: !raw && summary !== "", id: carried ? "" : (r.id ?? "") },
    },
  };
}

function isOnlyReasoning(m: Message): boolean {
  return m.toolCalls.length === 0 && !m.content && m.contents.length > 0 && m.contents.every((p) => p.part?.$case === "reasoning");
}

const ITEM_TYPES = "message, function_call, function_call_output, reasoning";

/**
 * Converts the `input` of a Responses request into the engine's messages:
 * message items become messages; `function_call` items become the tool calls
 * of an assistant message (consecutive calls share one, as chat expects);
 * `function_call_output` items become `tool` messages and must answer a call
 * made earlier in `input`. `reasoning` items become reasoning parts of the
 * assistant turn they open (providers that can use them send them back, the
 * others drop them). Anything else is a 400 naming the item.
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
        const last = out.at(-1);
        // An assistant message after its turn's reasoning items joins them.
        if (m.role === "assistant" && last?.role === "assistant" && isOnlyReasoning(last)) {
          last.contents.push(...(c.contents.length > 0 ? c.contents : c.content ? [textPart(c.content)] : []));
          last.content = c.content;
        } else out.push(message(m.role, c.content, c.contents));
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
        out.push({ ...message("tool", c.content, c.contents), toolCallId: o.call_id });
        break;
      }
      case "reasoning": {
        const r = validateAt(reasoningItem, raw, at);
        const last = out.at(-1);
        if (last?.role === "assistant" && isOnlyReasoning(last)) last.contents.push(reasoningPart(r));
        else out.push(message("assistant", "", [reasoningPart(r)]));
        break;
      }
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
