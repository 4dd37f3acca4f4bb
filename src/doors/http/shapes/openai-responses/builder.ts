import { Finish_Reason, type Chunk, type ReasoningDelta, type ToolCallDelta } from "../../../../gen/spillway/v1/chunk.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { responseErrorCode, responseJson, type ResponseHead, type ResponseState } from "./json.js";
import { reasoningContent } from "./reasoning-state.js";

/**
 * Receives each Responses event as it is made, as wire JSON text: `type`
 * is the event's name and `json` its complete data, `sequence_number`
 * included. Called synchronously, so the text is a snapshot of that moment.
 */
export type ResponsesEventSink = (type: string, json: string) => void;

type Item = Record<string, unknown>;

interface OpenMessage {
  readonly outputIndex: number;
  readonly item: Item;
  readonly part: { type: "output_text"; text: string; annotations: never[]; logprobs: never[] };
  /** The JSON text of `"item_id":…,"output_index":…` for deltas. */
  readonly where: string;
}

interface OpenReasoning {
  /** The engine's block index this item holds. */
  readonly index: number;
  readonly outputIndex: number;
  readonly item: Item & { summary: Array<{ type: "summary_text"; text: string }>; content?: Array<{ type: "reasoning_text"; text: string }> };
  readonly where: string;
  /** Whether the upstream named the item (OpenAI's `rs_…`), so its encrypted content is OpenAI's. */
  readonly upstreamId: boolean;
  signature: string;
  encrypted: string;
}

interface OpenCall {
  readonly outputIndex: number;
  readonly item: Item & { arguments: string; name: string };
  readonly where: string;
}

/**
 * Builds an OpenAI Response from engine chunks, emitting the Responses
 * stream events in OpenAI's order: `response.created` (and
 * `response.queued` for a background response waiting for its upstream), `response.in_progress`,
 * then per output item `output_item.added` → (`content_part.added` →
 * `output_text.delta`… → `output_text.done` → `content_part.done`) or
 * `function_call_arguments.delta`… → `function_call_arguments.done`, or for
 * a reasoning item `reasoning_summary_part.added` →
 * `reasoning_summary_text.delta`… → `.done` → `reasoning_summary_part.done`
 * (summaries) or `content_part.added` → `reasoning_text.delta`… → `.done` →
 * `content_part.done` (raw reasoning), then `output_item.done`; finally `response.completed` (or `response.incomplete`
 * when the token limit or a content filter cut it short, or a cancel did: status `cancelled`), or `error` then
 * `response.failed`. Every event carries `sequence_number`, from 0.
 *
 * Text goes to a message item; each tool-call index to its own
 * `function_call` item, so parallel calls stay apart. A message item is
 * closed when a call starts; calls stay open while calls stream (upstreams
 * may interleave their arguments) and are closed, in order, when text
 * starts again or the response ends.
 *
 * The same builder serves non-streaming requests: feed every chunk, then
 * read {@link ResponsesBuilder.response}.
 */
export class ResponsesBuilder {
  private seq = 0;
  private readonly state: ResponseState = {
    status: "in_progress",
    output: [],
    usage: undefined,
    error: null,
    incompleteReason: undefined,
    completedAt: null,
  };
  private message: OpenMessage | undefined;
  private reasoningItem: OpenReasoning | undefined;
  private reasonings = 0;
  private readonly calls = new Map<number, OpenCall>();
  private messages = 0;
  /** The error that ended the response, if one did. */
  failure: SpillwayError | undefined;

  /**
   * `now` is the clock for `completed_at` (epoch ms): a stored stream passes
   * the time each chunk was logged, so a replay renders the same events.
   */
  private queued = false;

  constructor(
    private head: ResponseHead,
    private readonly sink: ResponsesEventSink = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The `sequence_number` the next event gets (the last one emitted is this minus one). */
  get nextSequenceNumber(): number {
    return this.seq;
  }

  /** The Response object as it stands. */
  get response(): Record<string, unknown> {
    return responseJson(this.head, this.state);
  }

  /**
   * Emits `response.created` and `response.in_progress`; after
   * {@link ResponsesBuilder.queue}, only `response.in_progress`, with `head`
   * (the identity once the generation started: its upstream model) if given.
   */
  start(head?: ResponseHead): void {
    if (head) this.head = head;
    this.state.status = "in_progress";
    if (!this.queued) this.emitResponse("response.created");
    this.emitResponse("response.in_progress");
  }

  /** A background response waiting for its generation: `response.created` and `response.queued`, status `queued`. */
  queue(): void {
    this.queued = true;
    this.state.status = "queued";
    this.emitResponse("response.created");
    this.emitResponse("response.queued");
  }

  /** Turns one engine chunk into events. */
  push(chunk: Chunk): void {
    const p = chunk.payload;
    switch (p?.$case) {
      case "text":
        if (p.value.text) this.text(p.value.text);
        break;
      case "reasoning":
        this.reasoning(p.value);
        break;
      case "toolCall":
        this.toolCall(p.value);
        break;
      case "usage":
        this.state.usage = p.value;
        break;
      case "finish":
        this.finish(p.value.reason);
        break;
      case "error":
        this.fail(SpillwayError.fromChunkError(p.value));
        break;
      default:
        break;
    }
  }

  private emit(type: string, body: string): void {
    this.sink(type, `{"type":"${type}",${body}"sequence_number":${this.seq++}}`);
  }

  private emitObject(type: string, fields: Record<string, unknown>): void {
    const body = JSON.stringify(fields).slice(1, -1);
    this.emit(type, body ? `${body},` : "");
  }

  private emitResponse(type: string): void {
    this.emitObject(type, { response: this.response });
  }

  private text(delta: string): void {
    this.closeReasoning("completed");
    this.closeCalls();
    const m = (this.message ??= this.openMessage());
    m.part.text += delta;
    this.emit("response.output_text.delta", `${m.where},"content_index":0,"delta":${JSON.stringify(delta)},"logprobs":[],`);
  }

  private openMessage(): OpenMessage {
    const outputIndex = this.state.output.length;
    const id = `msg_${this.head.id.slice(5)}${this.messages++ ? `_${this.messages}` : ""}`;
    const item: Item = { id, type: "message", status: "in_progress", role: "assistant", content: [] };
    this.state.output.push(item);
    this.emitObject("response.output_item.added", { output_index: outputIndex, item });
    const part = { type: "output_text" as const, text: "", annotations: [], logprobs: [] };
    (item["content"] as unknown[]).push(part);
    const where = `"item_id":${JSON.stringify(id)},"output_index":${outputIndex}`;
    this.emit("response.content_part.added", `${where},"content_index":0,"part":${JSON.stringify(part)},`);
    return { outputIndex, item, part, where };
  }

  private closeMessage(status: "completed" | "incomplete"): void {
    const m = this.message;
    if (!m) return;
    this.message = undefined;
    const text = JSON.stringify(m.part.text);
    this.emit("response.output_text.done", `${m.where},"content_index":0,"text":${text},"logprobs":[],`);
    this.emit("response.content_part.done", `${m.where},"content_index":0,"part":${JSON.stringify(m.part)},`);
    m.item["status"] = status;
    this.emitObject("response.output_item.done", { output_index: m.outputIndex, item: m.item });
  }

  private reasoning(d: ReasoningDelta): void {
    if (this.reasoningItem && this.reasoningItem.index !== d.index) this.closeReasoning("completed");
    if (!this.reasoningItem) {
      this.closeMessage("completed");
      this.closeCalls();
      const outputIndex = this.state.output.length;
      const id = d.id || `rs_${this.head.id.slice(5)}${this.reasonings++ ? `_${this.reasonings}` : ""}`;
      const item: OpenReasoning["item"] = { id, type: "reasoning", summary: [], status: "in_progress" };
      this.state.output.push(item);
      this.emitObject("response.output_item.added", { output_index: outputIndex, item });
      this.reasoningItem = { index: d.index, outputIndex, item, where: `"item_id":${JSON.stringify(id)},"output_index":${outputIndex}`, upstreamId: d.id !== "", signature: "", encrypted: "" };
    }
    const r = this.reasoningItem;
    if (d.encrypted) r.encrypted += d.encrypted;
    if (d.signature) r.signature += d.signature;
    if (!d.text) return;
    if (d.summary) {
      if (r.item.summary.length === 0) {
        r.item.summary.push({ type: "summary_text", text: "" });
        this.emit("response.reasoning_summary_part.added", `${r.where},"summary_index":0,"part":{"type":"summary_text","text":""},`);
      }
      r.item.summary[0]!.text += d.text;
      this.emit("response.reasoning_summary_text.delta", `${r.where},"summary_index":0,"delta":${JSON.stringify(d.text)},`);
      return;
    }
    if (!r.item.content) {
      r.item.content = [{ type: "reasoning_text", text: "" }];
      this.emit("response.content_part.added", `${r.where},"content_index":0,"part":{"type":"reasoning_text","text":""},`);
    }
    r.item.content[0]!.text += d.text;
    this.emit("response.reasoning_text.delta", `${r.where},"content_index":0,"delta":${JSON.stringify(d.text)},`);
  }

  private closeReasoning(status: "completed" | "incomplete"): void {
    const r = this.reasoningItem;
    if (!r) return;
    this.reasoningItem = undefined;
    const summary = r.item.summary[0];
    if (summary) {
      this.emit("response.reasoning_summary_text.done", `${r.where},"summary_index":0,"text":${JSON.stringify(summary.text)},`);
      this.emit("response.reasoning_summary_part.done", `${r.where},"summary_index":0,"part":${JSON.stringify(summary)},`);
    }
    const content = r.item.content?.[0];
    if (content) {
      this.emit("response.reasoning_text.done", `${r.where},"content_index":0,"text":${JSON.stringify(content.text)},`);
      this.emit("response.content_part.done", `${r.where},"content_index":0,"part":${JSON.stringify(content)},`);
    }
    const carried = reasoningContent(r, r.upstreamId);
    if (carried !== undefined) r.item["encrypted_content"] = carried;
    r.item["status"] = status;
    this.emitObject("response.output_item.done", { output_index: r.outputIndex, item: r.item });
  }

  private toolCall(d: ToolCallDelta): void {
    this.closeReasoning("completed");
    this.closeMessage("completed");
    let call = this.calls.get(d.index);
    if (!call) {
      const outputIndex = this.state.output.length;
      const id = `fc_${this.head.id.slice(5)}_${outputIndex}`;
      const item = {
        id,
        type: "function_call",
        status: "in_progress",
        arguments: "",
        call_id: d.id || `call_${this.head.id.slice(5)}_${d.index}`,
        name: d.name,
      };
      this.state.output.push(item);
      this.emitObject("response.output_item.added", { output_index: outputIndex, item });
      call = { outputIndex, item, where: `"item_id":${JSON.stringify(id)},"output_index":${outputIndex}` };
      this.calls.set(d.index, call);
    } else if (d.name && !call.item.name) call.item.name = d.name;
    if (d.arguments) {
      call.item.arguments += d.arguments;
      this.emit("response.function_call_arguments.delta", `${call.where},"delta":${JSON.stringify(d.arguments)},`);
    }
  }

  private closeCalls(status: "completed" | "incomplete" = "completed"): void {
    if (this.calls.size === 0) return;
    const open = [...this.calls.values()].sort((a, b) => a.outputIndex - b.outputIndex);
    this.calls.clear();
    for (const c of open) {
      this.emit(
        "response.function_call_arguments.done",
        `${c.where},"name":${JSON.stringify(c.item.name)},"arguments":${JSON.stringify(c.item.arguments)},`,
      );
      c.item["status"] = status;
      this.emitObject("response.output_item.done", { output_index: c.outputIndex, item: c.item });
    }
  }

  private finish(reason: Finish_Reason): void {
    if (reason === Finish_Reason.REASON_CANCELLED) return this.cancelled();
    const cut =
      reason === Finish_Reason.REASON_LENGTH
        ? "max_output_tokens"
        : reason === Finish_Reason.REASON_CONTENT_FILTER
          ? "content_filter"
          : undefined;
    const itemStatus = cut ? "incomplete" : "completed";
    this.closeReasoning(itemStatus);
    this.closeMessage(itemStatus);
    this.closeCalls(itemStatus);
    this.state.status = cut ? "incomplete" : "completed";
    this.state.incompleteReason = cut;
    if (!cut) this.state.completedAt = Math.floor(this.now() / 1000);
    this.emitResponse(cut ? "response.incomplete" : "response.completed");
  }

  /**
   * A cancelled (background) response: open items end `incomplete`, status
   * `cancelled`. OpenAI's stream events have none for a cancel
   * (`response.cancelled` is only a webhook event), so the stream ends with
   * `response.incomplete` — "finished as incomplete", which a client already
   * handles as partial output — carrying the Response with status
   * `cancelled` and no `incomplete_details` (its reasons are only the token
   * limit and the content filter).
   */
  private cancelled(): void {
    this.closeReasoning("incomplete");
    this.closeMessage("incomplete");
    this.closeCalls("incomplete");
    this.state.status = "cancelled";
    this.emitResponse("response.incomplete");
  }

  private fail(err: SpillwayError): void {
    this.failure = err;
    for (const item of this.state.output) if (item["status"] === "in_progress") item["status"] = "incomplete";
    this.message = undefined;
    this.reasoningItem = undefined;
    this.calls.clear();
    this.state.status = "failed";
    this.state.error = { code: responseErrorCode(err), message: err.message };
    this.emitObject("error", { code: err.reason ?? null, message: err.message, param: err.param ?? null });
    this.emitResponse("response.failed");
  }
}
