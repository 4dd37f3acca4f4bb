import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { DEFAULT_MAX_EVENT_BYTES } from "./sse-reader.js";

/** Turns one upstream's SSE events into items (chunk payloads), synchronously. */
export interface SseMapper<T> {
  /**
   * Maps one event, handing its items to `emit`. Returns true when the event
   * is the stream's end marker (`[DONE]`, `message_stop`): what follows is
   * discarded. Throws to fail the stream (malformed or in-band error events).
   */
  onEvent(ev: EventSourceMessage, emit: (item: T) => void): boolean;
  /** The body ended before an end marker: throw to fail (a truncation), return to end cleanly. */
  onBodyEnd(): void;
  /** The error a body that failed while being read (reset, aborted) ends the stream with. */
  readError(e: unknown): Error;
}

/** Items queued before the upstream socket is paused (backpressure). */
const HIGH_WATER = 64;
/** Queued items under which a paused socket is resumed. */
const LOW_WATER = 16;
/**
 * After the end marker, how long the rest of the body may take to arrive
 * before the request is closed (ms). Reading it to its end keeps the
 * upstream connection for the next request (with TLS, a new one costs a
 * handshake); an upstream that keeps sending past this is cut off.
 */
const DRAIN_AFTER_END_MS = 1_000;

/**
 * The hot path from an upstream SSE body to the engine: the body's `data`
 * events are parsed (eventsource-parser) and mapped to items in the same
 * turn as the socket read, and the items are handed to the engine from a
 * queue. Per upstream read this costs one callback and, when the engine is
 * waiting, one promise — not a chain of async generators per event (the
 * benchmark showed that chain as most of the per-chunk cost).
 *
 * Backpressure: the socket is paused while {@link HIGH_WATER} items wait
 * unread, and resumed once the engine has taken them down to
 * {@link LOW_WATER}. After the end marker the rest of the body is read and
 * dropped for up to {@link DRAIN_AFTER_END_MS}, so that the connection goes
 * back to the pool; a body still open then is destroyed.
 * `return()` (the engine cancelled the stream) destroys the body, closing
 * the upstream request. A read that yields no item (pings, comments, a
 * role-only delta) calls `alive`, so the engine's timeouts count silence on
 * the wire rather than gaps between items.
 */
export class SsePushStream<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private error: Error | undefined;
  /** No more items will come (end marker, clean end, failure or return()). */
  private finished = false;
  private bodyEnded = false;
  private paused = false;
  private readonly parser;
  private readonly decoder = new StringDecoder("utf8");
  /** Whether the read being parsed produced an item. */
  private emitted = false;

  constructor(
    private readonly body: Readable,
    provider: string,
    private readonly mapper: SseMapper<T>,
    maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
    private readonly alive?: (() => void) | undefined,
  ) {
    this.parser = createParser({
      maxBufferSize: maxEventBytes,
      onEvent: this.onEvent,
      onError: (e) => {
        if (e.type !== "max-buffer-size-exceeded") return;
        this.fail(
          new SpillwayError(Code.DataLoss, `${provider}: upstream sent an event larger than ${maxEventBytes} bytes`, {
            httpStatus: 502,
            reason: "upstream_error",
            cause: e,
          }),
        );
      },
    });
    body.on("data", this.onData);
    body.on("end", this.onEnd);
    body.on("error", this.onError);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head]!;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      if (this.paused && this.queue.length - this.head <= LOW_WATER) this.resume();
      return Promise.resolve({ done: false, value });
    }
    const err = this.error;
    if (err) {
      this.error = undefined;
      return Promise.reject(err);
    }
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    if (this.paused) this.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The consumer stopped early: nothing more is read, the upstream request is closed. */
  return(): Promise<IteratorResult<T>> {
    this.finished = true;
    this.error = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.settle();
    if (!this.bodyEnded) this.body.destroy();
    return Promise.resolve({ done: true, value: undefined });
  }

  private readonly onData = (bytes: Buffer): void => {
    if (this.finished) return;
    this.emitted = false;
    try {
      // undici hands Buffers whatever the encoding; a multi-byte character may span two reads.
      this.parser.feed(this.decoder.write(bytes));
    } catch (e) {
      this.fail(this.mapper.readError(e));
      return;
    }
    if (!this.emitted) this.alive?.();
  };

  private readonly onEvent = (ev: EventSourceMessage): void => {
    if (this.finished) return;
    try {
      if (this.mapper.onEvent(ev, this.emit)) this.markDone();
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  };

  private readonly emit = (item: T): void => {
    if (this.finished) return;
    this.emitted = true;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ done: false, value: item });
      return;
    }
    this.queue.push(item);
    if (!this.paused && this.queue.length - this.head >= HIGH_WATER) {
      this.paused = true;
      this.body.pause();
    }
  };

  private readonly onEnd = (): void => {
    this.bodyEnded = true;
    if (this.finished) return;
    try {
      this.parser.feed(this.decoder.end());
      this.mapper.onBodyEnd();
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.finished = true;
    this.settle();
  };

  private readonly onError = (e: unknown): void => {
    this.bodyEnded = true;
    if (this.finished) return;
    this.fail(this.mapper.readError(e));
  };

  /** The end marker: deliver what is queued, then done; read the body's end (briefly) so the connection is kept. */
  private markDone(): void {
    this.finished = true;
    this.settle();
    if (this.paused) this.resume();
    if (this.bodyEnded) return;
    const timer = setTimeout(() => {
      if (!this.bodyEnded) this.body.destroy();
    }, DRAIN_AFTER_END_MS);
    timer.unref();
    this.body.once("close", () => clearTimeout(timer));
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.error = err;
    this.settle();
    if (!this.bodyEnded) this.body.destroy();
  }

  /** Wakes a waiting consumer once nothing is queued and no more will come. */
  private settle(): void {
    const w = this.waiter;
    if (!w || this.head < this.queue.length) return;
    this.waiter = undefined;
    const err = this.error;
    if (err) {
      this.error = undefined;
      w.reject(err);
    } else w.resolve({ done: true, value: undefined });
  }

  private resume(): void {
    this.paused = false;
    this.body.resume();
  }
}
