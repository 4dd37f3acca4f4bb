import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { PushQueue, type PushBody, type PushFraming, type PushSink } from "./push-queue.js";

/** One decoded event-stream message: its headers as plain values, its payload bytes. */
export interface EventStreamMessage {
  /** Header values by name (`:message-type`, `:event-type`, `:exception-type`, …); strings for string headers. */
  readonly headers: Readonly<Record<string, string | number | boolean | Uint8Array | Date | undefined>>;
  readonly body: Uint8Array;
}

/** Turns one upstream's event-stream messages into items, synchronously. */
export interface EventStreamMapper<T> {
  /**
   * Maps one message, handing its items to `emit`. Returns true when it is
   * the stream's last (what follows is drained and dropped). Throws to fail
   * the stream (exception frames, malformed payloads).
   */
  onMessage(msg: EventStreamMessage, emit: (item: T) => void): boolean;
  /** The body ended before the last message: throw to fail (a truncation), return to end cleanly. */
  onBodyEnd(): void;
  /** The error a body that failed while being read (reset, aborted, bad CRC) ends the stream with. */
  readError(e: unknown): Error;
}

/** A message as the codec decodes it (typed headers). */
type Message = ReturnType<EventStreamCodec["decode"]>;

/** Largest event-stream message accepted (AWS caps them at 16 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Prelude (total length, headers length, prelude CRC) plus the message CRC. */
const MIN_MESSAGE_BYTES = 16;

function plainHeaders(m: Message): EventStreamMessage["headers"] {
  const out: Record<string, string | number | boolean | Uint8Array | Date | undefined> = {};
  for (const [name, h] of Object.entries(m.headers)) out[name] = h.type === "long" ? h.value.valueOf() : h.value;
  return out;
}

/**
 * AWS event-stream framing (`application/vnd.amazon.eventstream`) for
 * {@link PushQueue}: each message's first four bytes give its total length,
 * so reads are cut into whole messages here (a message may span reads, a
 * read may hold several) and each is decoded — prelude and message CRC32s
 * checked, headers parsed — by AWS's own `@smithy/eventstream-codec`.
 */
class EventStreamFraming<T> implements PushFraming<T> {
  private readonly codec = new EventStreamCodec(toUtf8, fromUtf8);
  /** Bytes of a message whose end has not arrived yet. */
  private rest: Buffer | undefined;

  constructor(
    private readonly provider: string,
    private readonly mapper: EventStreamMapper<T>,
    private readonly maxMessageBytes: number,
  ) {}

  onData(bytes: Buffer, sink: PushSink<T>): void {
    const buf = this.rest ? Buffer.concat([this.rest, bytes]) : bytes;
    let off = 0;
    while (buf.length - off >= 4 && !sink.finished) {
      const total = buf.readUInt32BE(off);
      if (total < MIN_MESSAGE_BYTES || total > this.maxMessageBytes) {
        throw new SpillwayError(Code.DataLoss, `${this.provider}: upstream sent an event-stream message of ${total} bytes (limit ${this.maxMessageBytes})`, {
          httpStatus: 502,
          reason: "upstream_error",
          fromUpstream: true,
        });
      }
      if (buf.length - off < total) break;
      const msg = this.codec.decode(buf.subarray(off, off + total));
      off += total;
      let last: boolean;
      try {
        last = this.mapper.onMessage({ headers: plainHeaders(msg), body: msg.body }, sink.emit);
      } catch (e) {
        sink.fail(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (last) sink.done();
    }
    // Copied so that a partial message does not pin the whole read's buffer.
    this.rest = off < buf.length ? Buffer.from(buf.subarray(off)) : undefined;
  }

  onEnd(): void {
    if (this.rest) {
      throw new SpillwayError(Code.DataLoss, `${this.provider}: the upstream closed the stream in the middle of an event-stream message`, {
        httpStatus: 502,
        reason: "upstream_truncated",
        fromUpstream: true,
      });
    }
    this.mapper.onBodyEnd();
  }

  readError(e: unknown): Error {
    return this.mapper.readError(e);
  }
}

/**
 * The hot path from an AWS event-stream body (Bedrock's `converse-stream`)
 * to the engine: messages are decoded and mapped in the same turn as the
 * socket read and handed to the engine through the shared
 * {@link PushQueue} — the same backpressure, `alive`, drain-after-end and
 * `return()` contract as the SSE reader. A message larger than
 * `maxMessageBytes` or one with a bad CRC fails the stream (502).
 */
export class EventStreamPushStream<T> extends PushQueue<T> {
  constructor(body: PushBody, provider: string, mapper: EventStreamMapper<T>, alive?: () => void, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    super(body, new EventStreamFraming(provider, mapper, maxMessageBytes), alive);
  }
}
