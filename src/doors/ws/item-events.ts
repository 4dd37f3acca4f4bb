/**
 * `conversation.item.create` and `conversation.item.truncate`: checking a
 * client's item against the conversation and turning it into a
 * {@link ConversationItem} (GA and beta content types), and cutting an
 * assistant item's audio. Problems are returned, naming the field, for the
 * session to send as `error` events.
 */
import { InputDecoder, type RealtimeAudioFormat } from "./audio/formats.js";
import { decodeBase64Strict } from "./audio/base64.js";
import type { ClientItem, RealtimeProblem } from "./client-events.js";
import type { Conversation, ConversationItem, ItemContent } from "./conversation.js";
import { newId } from "./outbox.js";

/** A problem before the session adds the client's `event_id`. */
export type ItemProblem = Omit<RealtimeProblem, "eventId">;

/** A new item, and the audio parts still to transcribe. */
export interface BuiltItem {
  readonly item: ConversationItem;
  /** Input audio of the item: `samples` decoded to session PCM (24 kHz), `bytes` as they came in the input format. */
  readonly audio: ReadonlyArray<{ readonly part: ItemContent; readonly samples: Int16Array; readonly bytes: Uint8Array }>;
}

type MessageItem = Extract<ClientItem, { type: "message" }>;

const ALLOWED: Record<MessageItem["role"], readonly string[]> = {
  assistant: ["output_text", "output_audio"],
  system: ["input_text"],
  user: ["input_text", "input_audio"],
};

/** Checks and converts a client item; audio parts are decoded from `inputFormat`. */
export function buildItem(
  ci: ClientItem,
  previousId: string | null | undefined,
  conversation: Conversation,
  inputFormat: RealtimeAudioFormat,
): BuiltItem | ItemProblem {
  if (ci.id !== undefined && conversation.find(ci.id)) {
    return { code: "item_already_exists", message: `An item with id '${ci.id}' already exists.`, param: "item.id" };
  }
  if (previousId && !conversation.find(previousId)) {
    return { code: "item_not_found", message: `Item with id '${previousId}' not found.`, param: "previous_item_id" };
  }
  const id = ci.id ?? newId("item");
  if (ci.type === "function_call") {
    const item: ConversationItem = { id, type: "function_call", role: "assistant", status: "completed", content: [], audioMs: 0, callId: ci.call_id, name: ci.name, arguments: ci.arguments };
    return { item, audio: [] };
  }
  if (ci.type === "function_call_output") {
    const item: ConversationItem = { id, type: "function_call_output", role: "user", status: "completed", content: [], audioMs: 0, callId: ci.call_id, output: ci.output };
    return { item, audio: [] };
  }
  const content: ItemContent[] = [];
  const audio: Array<{ part: ItemContent; samples: Int16Array; bytes: Uint8Array }> = [];
  for (const [i, c] of ci.content.entries()) {
    const param = `item.content[${i}]`;
    // Beta content types: `text` and `audio` (assistant), `input_text` (user/system).
    const type = c.type === "text" ? (ci.role === "assistant" ? "output_text" : "input_text") : c.type === "audio" ? "output_audio" : c.type;
    if (!ALLOWED[ci.role].includes(type)) {
      return { code: "invalid_value", message: `Invalid '${param}.type': ${ci.role} items cannot hold '${c.type}' content.`, param: `${param}.type` };
    }
    const part: ItemContent = { type };
    if (type.endsWith("_text")) {
      if (c.text === undefined) {
        return { code: "missing_required_parameter", message: `Missing required parameter: '${param}.text'.`, param: `${param}.text` };
      }
      part.text = c.text;
    } else if (c.transcript != null) {
      part.transcript = c.transcript;
    } else if (type === "input_audio" && c.audio !== undefined) {
      const bytes = decodeBase64Strict(c.audio);
      let samples: Int16Array | undefined;
      try {
        samples = bytes && new InputDecoder(inputFormat).decode(bytes);
      } catch {
        samples = undefined;
      }
      if (!samples || !bytes) {
        return { code: "invalid_value", message: `Invalid '${param}.audio': it must be base64 ${inputFormat} audio.`, param: `${param}.audio` };
      }
      audio.push({ part, samples, bytes });
    }
    content.push(part);
  }
  return { item: { id, type: "message", role: ci.role, status: "completed", content, audioMs: 0 }, audio };
}

/**
 * Cuts assistant item `itemId`'s audio at `audioEndMs`. The audio itself is
 * not kept, so what the model will remember — the transcript — is cut in
 * proportion, at a word boundary.
 */
export function truncateItem(conversation: Conversation, itemId: string, contentIndex: number, audioEndMs: number): ItemProblem | undefined {
  const item = conversation.find(itemId);
  if (!item || item.role !== "assistant") {
    return { code: "item_not_found", message: `No assistant item with id '${itemId}'.`, param: "item_id" };
  }
  const part = item.content[contentIndex];
  if (!part || part.type !== "output_audio") {
    return { code: "invalid_value", message: `Item '${itemId}' has no audio content at index ${contentIndex}.`, param: "content_index" };
  }
  if (audioEndMs > Math.ceil(item.audioMs)) {
    return {
      code: "invalid_value",
      message: `audio_end_ms ${audioEndMs} is past the end of the item's audio (${Math.floor(item.audioMs)} ms).`,
      param: "audio_end_ms",
    };
  }
  const t = part.transcript ?? "";
  if (item.audioMs > 0 && t) {
    const cut = Math.round((t.length * audioEndMs) / item.audioMs);
    const space = t.lastIndexOf(" ", cut);
    part.transcript = cut >= t.length ? t : t.slice(0, space > 0 ? space : cut);
  }
  item.audioMs = audioEndMs;
  return undefined;
}
