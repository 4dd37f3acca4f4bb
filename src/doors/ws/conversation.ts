/**
 * The conversation of a realtime session: its items in order, their wire
 * form, and the chat messages the text model is given.
 */
import type { Message, ToolCall } from "../../gen/spillway/v1/request.js";
import { assistantPartType } from "./event-names.js";

/** One content part, by its GA type. */
export interface ItemContent {
  type: "input_text" | "input_audio" | "output_text" | "output_audio";
  text?: string;
  transcript?: string;
}

/** One item: a message, a function call the model made, or the result the client sent back. */
export interface ConversationItem {
  readonly id: string;
  /** `message` unless it is a function call or its output. */
  readonly type?: "message" | "function_call" | "function_call_output";
  /** For function calls `assistant`, for their outputs `user` (who sends them). */
  readonly role: "user" | "assistant" | "system";
  status: "completed" | "incomplete" | "in_progress";
  content: ItemContent[];
  /** For assistant audio: ms of audio sent, to check `truncate`. */
  audioMs: number;
  /** Function call / output: the call's id. */
  callId?: string;
  /** Function call: the function. */
  name?: string;
  /** Function call: its JSON arguments, as streamed so far. */
  arguments?: string;
  /** Function call output: the result. */
  output?: string;
}

/** Longest conversation kept; older items are dropped from the model's context. */
const MAX_ITEMS = 200;

/** The items of a session. */
export class Conversation {
  private readonly items: ConversationItem[] = [];

  /** The id of the last item, or null. */
  get lastId(): string | null {
    return this.items.at(-1)?.id ?? null;
  }

  /** Looks an item up. */
  find(id: string): ConversationItem | undefined {
    return this.items.find((i) => i.id === id);
  }

  /** Removes an item; false when there is none with this id. */
  delete(id: string): boolean {
    const at = this.items.findIndex((i) => i.id === id);
    if (at < 0) return false;
    this.items.splice(at, 1);
    return true;
  }

  /** Adds an item after `previousId` (at the end when undefined; at the start when null). Returns the previous item's id. */
  add(item: ConversationItem, previousId?: string | null): string | null {
    if (previousId === undefined) {
      const prev = this.lastId;
      this.items.push(item);
      if (this.items.length > MAX_ITEMS) this.items.shift();
      return prev;
    }
    if (previousId === null) {
      this.items.unshift(item);
      return null;
    }
    const at = this.items.findIndex((i) => i.id === previousId);
    this.items.splice(at + 1, 0, item);
    return previousId;
  }

  /** The chat messages for the text model: instructions, then each item's text. */
  messages(instructions: string): Message[] {
    const out: Message[] = [];
    const msg = (role: string, content: string): Message => ({
      role,
      content,
      parts: [],
      toolCalls: [],
      toolCallId: "",
      name: "",
      contents: [],
      toolError: false,
    });
    if (instructions) out.push(msg("system", instructions));
    for (const item of this.items) {
      if (item.type === "function_call") {
        const call: ToolCall = { id: item.callId ?? item.id, name: item.name ?? "", arguments: item.arguments ?? "" };
        // Parallel calls (and a message said before them) are one assistant turn for chat models.
        const last = out.at(-1);
        if (last?.role === "assistant") last.toolCalls.push(call);
        else out.push({ ...msg("assistant", ""), toolCalls: [call] });
        continue;
      }
      if (item.type === "function_call_output") {
        out.push({ ...msg("tool", item.output ?? ""), toolCallId: item.callId ?? "" });
        continue;
      }
      const text = item.content
        .map((c) => c.text ?? c.transcript ?? "")
        .filter((t) => t.length > 0)
        .join(" ");
      if (item.role === "assistant" && !text) continue;
      out.push(msg(item.role, text));
    }
    return out;
  }
}

/** The wire form of an item (`conversation.item.created`, `response.output_item.*`). */
export function itemJson(item: ConversationItem, beta: boolean): Record<string, unknown> {
  if (item.type === "function_call") {
    return { id: item.id, object: "realtime.item", type: "function_call", status: item.status, call_id: item.callId, name: item.name, arguments: item.arguments };
  }
  if (item.type === "function_call_output") {
    return { id: item.id, object: "realtime.item", type: "function_call_output", status: item.status, call_id: item.callId, output: item.output };
  }
  return {
    id: item.id,
    object: "realtime.item",
    type: "message",
    status: item.status,
    role: item.role,
    content: item.content.map((c) => {
      const type =
        c.type === "output_text" ? assistantPartType("text", beta) : c.type === "output_audio" ? assistantPartType("audio", beta) : c.type;
      const out: Record<string, unknown> = { type };
      if (c.text !== undefined) out["text"] = c.text;
      if (c.transcript !== undefined) out["transcript"] = c.transcript;
      return out;
    }),
  };
}
