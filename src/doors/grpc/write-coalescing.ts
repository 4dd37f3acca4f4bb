import { ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";

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
export class CoalescingCall extends ServerInterceptingCall {
  private inFlight = 0;
  private held: (() => void) | undefined;

  constructor(next: ServerInterceptingCallInterface) {
    super(next);
  }

  override sendMessage(message: unknown, callback: () => void): void {
    this.inFlight++;
    super.sendMessage(message, () => {
      this.inFlight--;
      const held = this.held;
      if (held && this.inFlight < MAX_MESSAGES_IN_FLIGHT) {
        this.held = undefined;
        held();
      }
    });
    // grpc-js's writable waits for this callback before its next write, so at most one is held.
    if (this.inFlight < MAX_MESSAGES_IN_FLIGHT) callback();
    else this.held = callback;
  }
}

/** A grpc-js server interceptor that coalesces the writes of streamed responses ({@link CoalescingCall}); unary calls pass through. */
export const coalesceWrites: ServerInterceptor = (method, call) => (method.responseStream ? new CoalescingCall(call) : new ServerInterceptingCall(call));
