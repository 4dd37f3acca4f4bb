import { StringDecoder } from "node:string_decoder";
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { PushQueue, type PushBody, type PushFraming, type PushSink } from "./push-queue.js";
import { DEFAULT_MAX_EVENT_BYTES } from "./sse-events.js";

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

/** SSE framing for {@link PushQueue}: eventsource-parser fed with each read, events handed to a mapper. */
class SseFraming<T> implements PushFraming<T> {
  private readonly parser: EventSourceParser;
  private readonly decoder = new StringDecoder("utf8");
  /** The sink of the read being parsed (the parser's callbacks have no argument for it). */
  private sink: PushSink<T> | undefined;

  constructor(
    provider: string,
    private readonly mapper: SseMapper<T>,
    maxEventBytes: number,
  ) {
    // Callbacks built as anonymous arrows (no `__name` per stream under tsx).
    const callbacks: Parameters<typeof createParser>[0] = {};
    callbacks.maxBufferSize = maxEventBytes;
    callbacks.onEvent = (ev) => this.onEvent(ev);
    callbacks.onError = (e) => {
      if (e.type !== "max-buffer-size-exceeded") return;
      this.sink?.fail(
        new SpillwayError(Code.DataLoss, `${provider}: upstream sent an event larger than ${maxEventBytes} bytes`, {
          httpStatus: 502,
          reason: "upstream_error",
          cause: e,
        }),
      );
    };
    this.parser = createParser(callbacks);
  }

  onData(bytes: Buffer, sink: PushSink<T>): void {
    this.sink = sink;
    // undici hands Buffers whatever the encoding; a multi-byte character may span two reads.
    this.parser.feed(this.decoder.write(bytes));
  }

  onEnd(sink: PushSink<T>): void {
    this.sink = sink;
    this.parser.feed(this.decoder.end());
    if (!sink.finished) this.mapper.onBodyEnd();
  }

  readError(e: unknown): Error {
    return this.mapper.readError(e);
  }

  private onEvent(ev: EventSourceMessage): void {
    const sink = this.sink;
    if (!sink || sink.finished) return;
    try {
      if (this.mapper.onEvent(ev, sink.emit)) sink.done();
    } catch (e) {
      sink.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

/**
 * The hot path from an upstream SSE body to the engine: the body's `data`
 * events are parsed (eventsource-parser) and mapped to items in the same
 * turn as the socket read, then handed to the engine from the shared
 * {@link PushQueue} (backpressure at 64/16 queued items, `alive` on reads
 * that yield nothing, the body's end drained after the end marker so the
 * connection is kept, `return()` closing the upstream request).
 */
export class SsePushStream<T> extends PushQueue<T> {
  constructor(body: PushBody, provider: string, mapper: SseMapper<T>, maxEventBytes = DEFAULT_MAX_EVENT_BYTES, alive?: () => void) {
    super(body, new SseFraming(provider, mapper, maxEventBytes), alive);
  }
}
