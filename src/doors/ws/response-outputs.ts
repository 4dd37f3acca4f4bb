/**
 * The output items of one response and their events: the assistant message
 * (made when the first text arrives, with one text or audio content part)
 * and the function calls the model makes (one item each, their arguments
 * streamed as `response.function_call_arguments.delta`). Items are added to
 * the conversation as they appear, so a later response sees them.
 */
import type { ToolCallDelta } from "../../gen/spillway/v1/chunk.js";
import { itemJson, type Conversation, type ConversationItem, type ItemContent } from "./conversation.js";
import { newId, type Outbox } from "./outbox.js";

/** What the outputs need from their response. */
export interface OutputsContext {
  readonly responseId: string;
  readonly outbox: Outbox;
  readonly conversation: Conversation;
  readonly beta: boolean;
  readonly audio: boolean;
  readonly addToConversation: boolean;
}

interface Output {
  readonly item: ConversationItem;
  readonly index: number;
}

/** The output items of a response. */
export class ResponseOutputs {
  private readonly items: Output[] = [];
  private msg: (Output & { readonly part: ItemContent }) | undefined;
  private readonly calls = new Map<number, Output>();
  /** The reply's text so far (message text or audio transcript). */
  text = "";

  constructor(private readonly ctx: OutputsContext) {}

  /** True when the response has a message item. */
  get hasMessage(): boolean {
    return this.msg !== undefined;
  }

  /** Where the message's content part is, for its events (makes the message if needed). */
  where(): Record<string, unknown> {
    const m = this.message();
    return { response_id: this.ctx.responseId, item_id: m.item.id, output_index: m.index, content_index: 0 };
  }

  /** Appends reply text to the message part. */
  addText(delta: string): void {
    const m = this.message();
    this.text += delta;
    if (this.ctx.audio) m.part.transcript = this.text;
    else m.part.text = this.text;
  }

  /** Counts audio sent in the message (for `truncate`). */
  addAudioMs(ms: number): void {
    this.message().item.audioMs += ms;
  }

  /** The message content part as its events show it. */
  partJson(): Record<string, unknown> {
    return this.ctx.audio ? { type: "audio", transcript: this.text } : { type: "text", text: this.text };
  }

  /** A piece of a function call: the first of a call makes its item. */
  toolCall(d: ToolCallDelta): void {
    let call = this.calls.get(d.index);
    if (!call) {
      const item: ConversationItem = {
        id: newId("item"),
        type: "function_call",
        role: "assistant",
        status: "in_progress",
        content: [],
        audioMs: 0,
        callId: d.id || newId("call"),
        name: d.name,
        arguments: "",
      };
      call = this.add(item);
      this.calls.set(d.index, call);
    } else if (d.name && !call.item.name) {
      call.item.name = d.name;
    }
    if (d.arguments) {
      call.item.arguments = (call.item.arguments ?? "") + d.arguments;
      this.ctx.outbox.send({
        type: "response.function_call_arguments.delta",
        response_id: this.ctx.responseId,
        item_id: call.item.id,
        output_index: call.index,
        call_id: call.item.callId,
        delta: d.arguments,
      });
    }
  }

  /** Every function call is complete: `response.function_call_arguments.done` for each. */
  callsDone(): void {
    for (const c of this.calls.values()) {
      this.ctx.outbox.send({
        type: "response.function_call_arguments.done",
        response_id: this.ctx.responseId,
        item_id: c.item.id,
        output_index: c.index,
        call_id: c.item.callId,
        name: c.item.name,
        arguments: c.item.arguments,
      });
    }
  }

  /** Closes every item (`content_part.done`, `output_item.done`, `conversation.item.done`). */
  close(completed: boolean): void {
    const { outbox } = this.ctx;
    if (this.msg) outbox.send({ type: "response.content_part.done", ...this.where(), part: this.partJson() });
    for (const o of this.items) {
      o.item.status = completed ? "completed" : "incomplete";
      const json = itemJson(o.item, this.ctx.beta);
      outbox.send({ type: "response.output_item.done", response_id: this.ctx.responseId, output_index: o.index, item: json });
      if (this.ctx.addToConversation) outbox.itemDone(json);
    }
  }

  /** The items as `response.output` shows them. */
  json(): Array<Record<string, unknown>> {
    return this.items.map((o) => itemJson(o.item, this.ctx.beta));
  }

  private message(): Output & { readonly part: ItemContent } {
    if (this.msg) return this.msg;
    const item: ConversationItem = { id: newId("item"), type: "message", role: "assistant", status: "in_progress", content: [], audioMs: 0 };
    const out = this.add(item);
    const part: ItemContent = this.ctx.audio ? { type: "output_audio", transcript: "" } : { type: "output_text", text: "" };
    item.content.push(part);
    this.msg = { ...out, part };
    this.ctx.outbox.send({
      type: "response.content_part.added",
      response_id: this.ctx.responseId,
      item_id: item.id,
      output_index: out.index,
      content_index: 0,
      part: this.partJson(),
    });
    return this.msg;
  }

  private add(item: ConversationItem): Output {
    const { outbox, conversation } = this.ctx;
    const out = { item, index: this.items.length };
    this.items.push(out);
    const previous = this.ctx.addToConversation ? conversation.add(item) : null;
    const json = itemJson(item, this.ctx.beta);
    outbox.send({ type: "response.output_item.added", response_id: this.ctx.responseId, output_index: out.index, item: json });
    if (this.ctx.addToConversation) outbox.itemAdded(previous, json);
    return out;
  }
}
