import { ServerInterceptingCall, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import type { ChunkSink } from "./pipe.js";

/**
 * Messages a call may have handed to HTTP/2 and not yet seen written
 * before it waits. With grpc-js's own writable buffer (16 messages) this
 * bounds what one call holds to 16 + 16 messages plus HTTP/2 flow control.
 */
export const MAX_MESSAGES_IN_FLIGHT = 16;

/**
 * A call whose response messages are acknowledged to grpc-js's writable as
 * soon as they are handed to the HTTP/2 stream, while fewer than
 * {@link MAX_MESSAGES_IN_FLIGHT} are unwritten.
 *
 * Why: grpc-js writes a call's messages one at a time — its object-mode
 * writable hands the next message to the HTTP/2 stream only once the
 * previous one has been written to the socket, so each message pays its own
 * HTTP/2 write (a native call, a write request, three closures and a
 * `nextTick`) and its own event-loop turn. Chunks that arrive in one
 * upstream read (often tens of them) thus leave in tens of turns. Acked
 * early, the messages of one turn queue in the HTTP/2 stream, whose
 * writable sends what queued in one `writev` when the first write
 * completes: one HTTP/2 write per batch. Every chunk is still its own gRPC
 * message, in order; only the writes are coalesced.
 *
 * Backpressure stays: past the limit the acknowledgement waits for the
 * HTTP/2 writes to complete, grpc-js's writable fills and `write()` returns
 * false, so the door stops pulling (see pipe.ts). The status is sent after
 * the data: grpc-js ends the HTTP/2 stream with `end()`, which follows the
 * queued writes, and sends the trailers once they are out. A message
 * grpc-js drops (call cancelled, write failed: grpc-js then ends the call
 * itself) is never acknowledged, as before.
 */
export class CoalescingCall extends ServerInterceptingCall implements ChunkSink {
  private inFlight = 0;
  private held: (() => void) | undefined;
  private drainWaiters: Array<() => void> = [];
  private readonly inner: ServerInterceptingCallInterface;

  constructor(next: ServerInterceptingCallInterface) {
    const self: { call?: CoalescingCall } = {};
    // The request metadata grpc-js hands the handler's call is the object this listener sees: it finds this call again ({@link directSink}).
    super(next, {
      start: (go) =>
        go({
          onReceiveMetadata: (metadata, pass) => {
            if (self.call) byMetadata.set(metadata, self.call);
            pass(metadata);
          },
        }),
    });
    self.call = this;
    this.inner = next;
  }

  override sendMessage(message: unknown, callback: () => void): void {
    this.inFlight++;
    super.sendMessage(message, this.written);
    // grpc-js's writable waits for this callback before its next write, so at most one is held.
    if (this.inFlight < MAX_MESSAGES_IN_FLIGHT) callback();
    else this.held = callback;
  }

  /**
   * Writes a message straight to grpc-js's call, past its object-mode
   * writable (one Writable step, a closure and a callback less per message);
   * false once {@link MAX_DIRECT_IN_FLIGHT} are unwritten: wait for `drain`.
   */
  write(message: unknown): boolean {
    this.inFlight++;
    this.inner.sendMessage(message, this.written);
    return this.inFlight < MAX_DIRECT_IN_FLIGHT;
  }

  /** `drain` (the only event): `listener` runs once fewer than {@link MAX_DIRECT_IN_FLIGHT} messages are unwritten. */
  once(_event: string, listener: () => void): this {
    this.drainWaiters.push(listener);
    return this;
  }

  removeListener(_event: string, listener: () => void): this {
    this.drainWaiters = this.drainWaiters.filter((l) => l !== listener);
    return this;
  }

  private readonly written = (): void => {
    this.inFlight--;
    const held = this.held;
    if (held && this.inFlight < MAX_MESSAGES_IN_FLIGHT) {
      this.held = undefined;
      held();
    }
    if (this.drainWaiters.length > 0 && this.inFlight < MAX_DIRECT_IN_FLIGHT) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  };
}

/** Messages a call written through {@link directSink} may have unwritten before `write` returns false (no grpc-js writable buffer behind it). */
export const MAX_DIRECT_IN_FLIGHT = 2 * MAX_MESSAGES_IN_FLIGHT;

const byMetadata = new WeakMap<Metadata, CoalescingCall>();

/**
 * The coalescing call under a handler's call, found by the call's request
 * metadata, as a {@link ChunkSink} that writes past grpc-js's object-mode
 * writable; undefined when there is none (the interceptor is not installed,
 * or grpc-js passed the handler another metadata object), and the handler's
 * call is the sink. End the call as usual (`end()`, `emit("error")`): its
 * status still follows every message written here.
 */
export function directSink(metadata: Metadata): ChunkSink | undefined {
  return byMetadata.get(metadata);
}

/** A grpc-js server interceptor that coalesces the writes of streamed responses ({@link CoalescingCall}); unary calls pass through. */
export const coalesceWrites: ServerInterceptor = (method, call) => (method.responseStream ? new CoalescingCall(call) : new ServerInterceptingCall(call));
