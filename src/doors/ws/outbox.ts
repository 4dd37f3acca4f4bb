/**
 * The sending side of a realtime socket: JSON events stamped with an
 * `event_id` and named for the client's protocol (GA or beta), and
 * backpressure: `ready()` resolves when the socket's buffered amount is below
 * the high-water mark (at once, or on uWS `drain`), so audio is produced only
 * as fast as the client takes it and a slow client never makes the gateway
 * queue without bound. Sending after the socket closed is a no-op.
 *
 * Batched (the cascade session): events sent while one turn's promises
 * settle — every delta of one upstream read — are handed to the socket
 * together at `process.nextTick`, in one cork, so they leave in one write
 * (one syscall) instead of one each; each is still its own WebSocket
 * message, in order. Call `flush()` before ending the socket so queued
 * events go out first.
 */
import { randomFillSync } from "node:crypto";
import { serverEventName } from "./event-names.js";

/** The socket operations the outbox needs (a uWS WebSocket has them). */
export interface EventSocket {
  send(message: string): number;
  getBufferedAmount(): number;
  cork(cb: () => void): unknown;
}

const ID_BYTES = 12;
/** Random bytes for 256 ids, refilled when used up: one `randomFillSync` per 256 ids, not one `randomBytes` per id (it was ~15% of a text response's CPU). */
const idPool = Buffer.alloc(ID_BYTES * 256);
let idAt = idPool.length;

/** A fresh id with a prefix, OpenAI-style (`event_…`, `item_…`, `resp_…`): 12 random bytes, base64url. */
export function newId(prefix: string): string {
  if (idAt + ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  const id = idPool.toString("base64url", idAt, idAt + ID_BYTES);
  idAt += ID_BYTES;
  return `${prefix}_${id}`;
}

/** An event to send: its GA `type` and its fields (no `event_id`). */
export type ServerEvent = { readonly type: string } & Record<string, unknown>;

/** Outgoing events of one session. */
export class Outbox {
  private closed = false;
  private waiters: Array<() => void> = [];
  /** Batched mode: event texts not handed to the socket yet, and their length. */
  private queue: string[] = [];
  private queuedBytes = 0;
  private flushQueued = false;
  /** Unbatched mode: the event being sent inside the cork ({@link Outbox.sendCorkedText}), and the cork's callback. */
  private corkedText = "";
  private sendCorked: (() => void) | undefined;

  /**
   * `batch`: queue events and send them together at `process.nextTick`
   * (see above); default false: each event is sent at once.
   */
  constructor(
    private readonly socket: EventSocket,
    private readonly beta: boolean,
    private readonly highWaterBytes: number,
    private readonly observe?: (event: Record<string, unknown>) => void,
    private readonly batch = false,
  ) {}

  /** True once the socket closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends an event now (whatever the buffered amount: events are small, audio waits on `ready`). */
  send(event: ServerEvent): void {
    if (this.closed) return;
    const out: Record<string, unknown> = {
      ...event,
      type: serverEventName(event.type, this.beta),
      event_id: newId("event"),
    };
    this.observe?.(out);
    this.sendText(JSON.stringify(out));
  }

  /**
   * A sender of one kind of delta event whose other fields do not change
   * (`response.output_text.delta` of one content part): each call sends
   * `{type, ...fields, delta, event_id}` — the bytes `send` would — from a
   * prefix serialized once, so a delta costs one string, not three objects
   * and a full `JSON.stringify`. With an `observe` hook it goes through
   * `send` (the hook sees every event as an object). `fields` must not
   * hold `type`, `delta` or `event_id`.
   */
  deltaSender(type: string, fields: Record<string, unknown>): (delta: string) => void {
    if (this.observe) return (delta) => this.send({ type, ...fields, delta });
    const head = JSON.stringify({ type: serverEventName(type, this.beta), ...fields });
    const prefix = `${head.slice(0, -1)},"delta":`;
    return (delta) => {
      if (this.closed) return;
      this.sendText(`${prefix}${JSON.stringify(delta)},"event_id":"${newId("event")}"}`);
    };
  }

  private sendText(text: string): void {
    if (!this.batch) {
      // One cork callback per outbox (made on the first send), the text handed over in a field: no closure per event.
      this.corkedText = text;
      this.socket.cork((this.sendCorked ??= sendCorkedOf(this)));
      this.corkedText = "";
      return;
    }
    this.queue.push(text);
    this.queuedBytes += text.length;
    if (this.flushQueued) return;
    this.flushQueued = true;
    // After the microtask queue has drained, like the HTTP door's batching (exchange.ts).
    process.nextTick(this.flushNow);
  }

  /** Inside the cork of an unbatched send: sends the event's text. */
  sendCorkedText(): void {
    this.socket.send(this.corkedText);
  }

  /** Hands queued events to the socket now, in one cork (batched mode; a no-op otherwise or when none are queued). */
  flush(): void {
    if (this.queue.length === 0 || this.closed) {
      this.queue = [];
      this.queuedBytes = 0;
      return;
    }
    const q = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.socket.cork(() => {
      for (const text of q) this.socket.send(text);
    });
    // Queued bytes counted against the mark may have made a sender wait; the socket alone may be below it (no `drain` will come).
    if (this.waiters.length > 0) this.onDrain();
  }

  private readonly flushNow = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  /**
   * An item joined the conversation: `conversation.item.created`, and for GA
   * clients also `conversation.item.added` (GA's name for the same moment).
   */
  itemAdded(previousItemId: string | null, item: Record<string, unknown>): void {
    this.send({ type: "conversation.item.created", previous_item_id: previousItemId, item });
    if (!this.beta) this.send({ type: "conversation.item.added", previous_item_id: previousItemId, item });
  }

  /** An item is final (transcript known, response over): `conversation.item.done`, GA clients only. */
  itemDone(item: Record<string, unknown>): void {
    if (!this.beta) this.send({ type: "conversation.item.done", item });
  }

  /** Resolves when the socket can take more (or has closed). */
  ready(): Promise<void> {
    if (this.closed || this.socket.getBufferedAmount() + this.queuedBytes < this.highWaterBytes) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** uWS `drain`: wakes the senders waiting on `ready` once below the mark. */
  onDrain(): void {
    if (this.socket.getBufferedAmount() + this.queuedBytes >= this.highWaterBytes) return;
    this.wakeAll();
  }

  /** The socket closed: nothing more is sent; waiters are released. */
  onClose(): void {
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.wakeAll();
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** An outbox's unbatched cork callback (a function making an anonymous arrow: no `__name` under tsx). */
function sendCorkedOf(o: Outbox): () => void {
  return () => o.sendCorkedText();
}
