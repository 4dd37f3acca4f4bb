import { ServerInterceptingCall, status as grpcStatus, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import type { Ticket } from "../../engine/admission.js";
import type { Chunk } from "../../gen/spillway/v1/chunk.js";
import { frameChunks, serializeChunk } from "./chunk-serializer.js";
import { refusalStatus, type EarlyCheck } from "./early-admission.js";
import type { ChunkSink } from "./pipe.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";

/**
 * Messages a call may have handed to HTTP/2 and not yet seen written
 * before it waits. With grpc-js's own writable buffer (16 messages) this
 * bounds what one call holds to 16 + 16 messages plus HTTP/2 flow control.
 */
export const MAX_MESSAGES_IN_FLIGHT = 16;

/** Messages a call written through {@link directSink} may have unwritten before `write` returns false (no grpc-js writable buffer behind it). */
export const MAX_DIRECT_IN_FLIGHT = 2 * MAX_MESSAGES_IN_FLIGHT;

/**
 * Messages a call that frames its batches ({@link CoalescingCall.writeMany})
 * may have unwritten before it waits for `drain`, as long as they hold under
 * {@link MAX_FRAMED_BYTES}: framed, a message costs no write of its own, so
 * a burst of small chunks goes out in a few large writes.
 */
export const MAX_FRAMED_IN_FLIGHT = 128;

/** Bytes of framed messages a call may have unwritten before it waits for `drain` (64 KiB). */
export const MAX_FRAMED_BYTES = 64 * 1024;

/**
 * The parts of grpc-js 1.14's `BaseServerInterceptingCall` (private API)
 * that framing a batch needs, as {@link framingTarget} checks for them:
 * the HTTP/2 stream, and what its own `sendMessage` does around
 * `stream.write` (cancel check, response headers, size limit, status on a
 * failed write, the channelz counter).
 */
interface FramingTarget {
  readonly stream: { write(chunk: Buffer, cb: (err?: Error | null) => void): boolean };
  readonly handler: { readonly serialize: unknown };
  readonly maxSendMessageSize: number;
  readonly callEventTracker?: { addMessageSent(): void } | null;
  checkCancelled(): boolean;
  maybeSendMetadata(): void;
  sendStatus(status: { code: number; details: string; metadata: Metadata | null }): void;
}

/**
 * `next` as a {@link FramingTarget} when it is grpc-js's base call for a
 * method whose response serializer is {@link serializeChunk} (so the framed
 * bytes are the ones grpc-js would write); undefined otherwise (another
 * grpc-js version's shape, another interceptor in between, another
 * serializer): the call then writes through grpc-js's public `sendMessage`.
 */
export function framingTarget(next: ServerInterceptingCallInterface): FramingTarget | undefined {
  const t = next as unknown as Partial<FramingTarget>;
  if (
    typeof t.checkCancelled === "function" &&
    typeof t.maybeSendMetadata === "function" &&
    typeof t.sendStatus === "function" &&
    typeof t.stream?.write === "function" &&
    t.handler?.serialize === serializeChunk &&
    typeof t.maxSendMessageSize === "number"
  ) {
    return t as FramingTarget;
  }
  return undefined;
}

/** Options of a {@link CoalescingCall}. */
export interface CoalescingOptions {
  /** The early admission check, run on the request metadata (absent: none). */
  readonly check?: EarlyCheck | undefined;
  /** The method's path, for the check and its refusal record. Default "". */
  readonly path?: string | undefined;
  /** Frame the chunks of a batch into one HTTP/2 write when grpc-js's shape allows ({@link framingTarget}). Default true. */
  readonly frame?: boolean | undefined;
}

/**
 * A streaming call as the door sees it, from grpc-js's server interceptor:
 *
 * **Admitted before decode.** With a {@link EarlyCheck}, the call is
 * admitted (`Admission.enter()`) when its request metadata arrives, before
 * grpc-js reads the request message: grpc-js keeps the HTTP/2 stream paused
 * until the handler asks for a message, and the handler only sees the call
 * once the metadata is passed on. A refused call ends there with
 * `UNAVAILABLE` and the refusal's trailers (a trailers-only response); its
 * message is never read or decoded, its handler never runs. An admitted
 * call carries its {@link Ticket} to the handler ({@link earlyTicket}); the
 * ticket is released when the call ends however it ends (grpc-js reports
 * every end, including a normal one, as a cancel; `release()` is
 * idempotent and a no-op once a stream took the slot), so a call whose
 * message never decodes, or whose client leaves before the handler runs,
 * frees its slot too.
 *
 * **Writes coalesced.** Response messages are acknowledged to grpc-js's
 * writable as soon as they are handed to the HTTP/2 stream, while fewer
 * than {@link MAX_MESSAGES_IN_FLIGHT} are unwritten. grpc-js writes a
 * call's messages one at a time — its object-mode writable hands the next
 * message to the HTTP/2 stream only once the previous one has been written
 * to the socket. Acked early, the messages of one turn queue in the HTTP/2
 * stream, which sends them in one `writev`. The door writes past that
 * writable with {@link write} / {@link writeMany}; `writeMany` frames a
 * batch (the chunks ready in one turn) itself — each chunk still its own
 * gRPC message, the 5-byte prefix then its bytes, as grpc-js frames them
 * — and hands HTTP/2 one Buffer: one `Http2Stream` write and one callback
 * per batch instead of per message. That needs grpc-js's private base call
 * ({@link framingTarget}); without it each message goes through grpc-js's
 * public `sendMessage`.
 *
 * Backpressure stays: a batch counts as its number of messages in flight;
 * past the limit `write`/`writeMany` return false and the door waits for
 * `drain` (pipe.ts), which comes as HTTP/2 completes writes (it does not
 * while the client's flow-control window is shut). The status is sent after
 * the data: grpc-js ends the HTTP/2 stream with `end()`, which follows the
 * queued writes. A message grpc-js drops (call cancelled, write failed:
 * grpc-js then ends the call itself) is never acknowledged.
 */
export class CoalescingCall extends ServerInterceptingCall implements ChunkSink {
  private inFlight = 0;
  private bytesInFlight = 0;
  /** {@link MAX_FRAMED_IN_FLIGHT} when framing, else {@link MAX_DIRECT_IN_FLIGHT}. */
  private readonly maxInFlight: number;
  private held: (() => void) | undefined;
  private drainWaiters: Array<() => void> = [];
  private readonly inner: ServerInterceptingCallInterface;
  private readonly target: FramingTarget | undefined;
  private admitted: Ticket | undefined;
  /** Whether a write has completed yet (the first one is published as a trace phase). */
  private flushed = false;
  /** Framed batches written and not yet called back: message count and bytes, in pairs, oldest at {@link framedHead}. */
  private readonly framed: number[] = [];
  private framedHead = 0;
  /** The framed writes' callback (made on the first one). */
  private onFramed: ((err?: Error | null) => void) | undefined;

  constructor(next: ServerInterceptingCallInterface, options: CoalescingOptions = {}) {
    const self: { call?: CoalescingCall } = {};
    const check = options.check?.applies(options.path ?? "") ? options.check : undefined;
    // The request metadata grpc-js hands the handler's call is the object this listener sees: it finds this call again ({@link directSink}).
    super(next, {
      start: (go) =>
        go({
          onReceiveMetadata: (metadata, pass) => {
            const call = self.call;
            if (!call) return pass(metadata);
            tracePhase(TracePhase.Arrived, call, "grpc");
            if (check) {
              const startedAt = performance.now();
              try {
                call.admitted = check.enter();
              } catch (e) {
                // Refused before the message is read: the handler never sees the call.
                next.sendStatus(refusalStatus(e));
                check.refused(metadata.get("x-request-id")[0], options.path ?? "", e, startedAt);
                return;
              }
            }
            byMetadata.set(metadata, call);
            pass(metadata);
          },
          onCancel: () => {
            self.call?.admitted?.release();
          },
        }),
    });
    self.call = this;
    this.inner = next;
    this.target = options.frame === false ? undefined : framingTarget(next);
    this.maxInFlight = this.target ? MAX_FRAMED_IN_FLIGHT : MAX_DIRECT_IN_FLIGHT;
  }

  /** The ticket the early check took for this call (undefined without a check, or before the metadata came). */
  get ticket(): Ticket | undefined {
    return this.admitted;
  }

  /** Whether batches are framed here ({@link writeMany}) rather than sent message by message. */
  get framing(): boolean {
    return this.target !== undefined;
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
    return this.room();
  }

  /** Whether another write may go before `drain`. */
  private room(): boolean {
    return this.inFlight < this.maxInFlight && this.bytesInFlight < MAX_FRAMED_BYTES;
  }

  /**
   * Writes `chunks`, in order, each its own gRPC message: framed into one
   * HTTP/2 write when {@link framing}, else one {@link write} each. Returns
   * false once {@link MAX_FRAMED_IN_FLIGHT} messages or {@link MAX_FRAMED_BYTES}
   * are unwritten ({@link MAX_DIRECT_IN_FLIGHT} messages when not framing):
   * wait for `drain`. A chunk that cannot be serialized (or is over
   * `grpc.max_send_message_length`) sends the batch the public way, so
   * grpc-js ends the call as it would (`INTERNAL` / `RESOURCE_EXHAUSTED`)
   * after the chunks before it.
   */
  writeMany(chunks: readonly Chunk[]): boolean {
    const t = this.target;
    if (t === undefined || chunks.length === 0) return this.writeEach(chunks);
    if (t.checkCancelled()) return this.room();
    let bytes: Buffer;
    try {
      const framed = frameChunks(chunks);
      if (t.maxSendMessageSize !== -1 && framed.largest > t.maxSendMessageSize) return this.writeEach(chunks);
      bytes = framed.bytes;
    } catch {
      return this.writeEach(chunks);
    }
    const n = chunks.length;
    const size = bytes.length;
    this.inFlight += n;
    this.bytesInFlight += size;
    t.maybeSendMetadata();
    // The batch's count and size wait in a FIFO for the write's callback (HTTP/2 calls them in write order): one callback per call, not a closure per batch.
    this.framed.push(n, size);
    t.stream.write(bytes, (this.onFramed ??= framedOf(this)));
    return this.room();
  }

  /** A framed batch's write completed (the oldest one in {@link framed}; see {@link writeMany}). */
  framedWritten(err: Error | null | undefined): void {
    const t = this.target!;
    const n = this.framed[this.framedHead]!;
    const size = this.framed[this.framedHead + 1]!;
    this.framedHead += 2;
    if (this.framedHead === this.framed.length) {
      this.framed.length = 0;
      this.framedHead = 0;
    }
    if (err) {
      // As grpc-js's own sendMessage: the call ends INTERNAL, the messages are never acknowledged.
      t.sendStatus({ code: grpcStatus.INTERNAL, details: "Internal server error", metadata: null });
      return;
    }
    const tracker = t.callEventTracker;
    if (tracker) for (let i = 0; i < n; i++) tracker.addMessageSent();
    this.bytesInFlight -= size;
    this.settle(n);
  }

  private writeEach(chunks: readonly Chunk[]): boolean {
    for (const c of chunks) this.write(c);
    return this.room();
  }

  /** `drain` (the only event): `listener` runs once another write may go (see {@link writeMany}). */
  once(_event: string, listener: () => void): this {
    this.drainWaiters.push(listener);
    return this;
  }

  removeListener(_event: string, listener: () => void): this {
    this.drainWaiters = this.drainWaiters.filter((l) => l !== listener);
    return this;
  }

  private readonly written = (): void => {
    this.settle(1);
  };

  private settle(n: number): void {
    this.inFlight -= n;
    if (!this.flushed) {
      this.flushed = true;
      tracePhase(TracePhase.FirstWritten, this, "grpc");
    }
    const held = this.held;
    if (held && this.inFlight < MAX_MESSAGES_IN_FLIGHT) {
      this.held = undefined;
      held();
    }
    if (this.drainWaiters.length > 0 && this.room()) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/** A call's framed-write callback (a function making an anonymous arrow: no `__name` under tsx). */
function framedOf(call: CoalescingCall): (err?: Error | null) => void {
  return (err) => call.framedWritten(err);
}

const byMetadata = new WeakMap<Metadata, CoalescingCall>();

/**
 * The coalescing call under a handler's call, found by the call's request
 * metadata, as a {@link ChunkSink} that writes past grpc-js's object-mode
 * writable; undefined when there is none (the interceptor is not installed,
 * or grpc-js passed the handler another metadata object), and the handler's
 * call is the sink. End the call as usual (`end()`, `emit("error")`): its
 * status still follows every message written here.
 */
export function directSink(metadata: Metadata): CoalescingCall | undefined {
  return byMetadata.get(metadata);
}

/**
 * The ticket the interceptor's early check took for the call with this
 * request metadata; undefined when no check ran (no interceptor, or a method
 * it does not check): the handler then checks itself.
 */
export function earlyTicket(metadata: Metadata): Ticket | undefined {
  return byMetadata.get(metadata)?.ticket;
}

/** Options of {@link doorInterceptor}. */
export interface DoorInterceptorOptions {
  /** The early admission check of the Spillway service's streaming methods; none when absent. */
  readonly check?: EarlyCheck | undefined;
  /** See {@link CoalescingOptions.frame}. Default true. */
  readonly frame?: boolean | undefined;
}

/**
 * The gRPC door's server interceptor: every streaming method's call becomes
 * a {@link CoalescingCall} (admitted early when `check` applies to it);
 * unary calls (ListModels, health) pass through untouched.
 */
export function doorInterceptor(options: DoorInterceptorOptions = {}): ServerInterceptor {
  return (method, call) =>
    method.responseStream ? new CoalescingCall(call, { check: options.check, path: method.path, frame: options.frame }) : new ServerInterceptingCall(call);
}

/** {@link doorInterceptor} without an early check: coalesced writes only. */
export const coalesceWrites: ServerInterceptor = doorInterceptor();
