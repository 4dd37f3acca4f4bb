import type { Deadline } from "@grpc/grpc-js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { OnDemandAbortSource, type AbortSource } from "../../engine/signals.js";

/** The parts of a grpc-js server call (any kind) that carry cancellation and the deadline. */
export interface SurfaceCall {
  readonly cancelled: boolean;
  getDeadline(): Deadline;
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/**
 * A gRPC call adapted to what the engine understands: one abort that fires
 * when the call is cancelled (client cancel, connection loss, or the
 * deadline enforced by grpc-js), and the client's deadline as epoch ms.
 */
export interface CallScope {
  /**
   * The call's abort as a cheap {@link AbortSource} (callbacks; no
   * AbortSignal is made unless something reads its `signal`): what the hot
   * path (`serveStream`, the engine, `pipeToCall`) uses. Its reason is a
   * `Canceled` SpillwayError when the client cancels, or a
   * `DeadlineExceeded` one when the call was cancelled because its deadline
   * passed.
   */
  readonly abortSource: AbortSource;
  /**
   * The same abort as an AbortSignal, made on first read (a Node 20 signal
   * costs ~2 µs and each listener ~1 µs, per call): for code that needs a
   * signal (stored-stream followers, ListModels).
   */
  readonly signal: AbortSignal;
  /** The client's deadline (epoch ms); `undefined` when it set none. */
  readonly deadline: number | undefined;
  /**
   * Aborts the call's work with `reason` (the door's forced shutdown: the
   * handler then ends the call with that status). No-op once aborted.
   */
  end(reason: SpillwayError): void;
  /**
   * Detaches from the call (and from the door's set of calls in flight).
   * Call it once the handler is done: grpc-js also reports a call that
   * ended normally as cancelled, which must not count.
   */
  dispose(): void;
}

/** grpc-js's deadline timer and ours may disagree by a tick; within this margin a cancel is the deadline's. */
const DEADLINE_SLACK_MS = 20;

/** The client's deadline as epoch ms, `undefined` for none (grpc-js reports `Infinity`). */
export function deadlineOf(call: Pick<SurfaceCall, "getDeadline">): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The scope of one call: the call's `cancelled` listener is the scope
 * itself (one bound method, no AbortController per call); callbacks and
 * the signal, once made, fire once, in that order (signal listeners first,
 * as the engine's linked controller expects of a parent).
 */
class Scope extends OnDemandAbortSource implements CallScope {
  declare abortReason: SpillwayError | undefined;
  private readonly onCancelled = (): void => this.cancel();

  constructor(
    private readonly call: SurfaceCall,
    readonly deadline: number | undefined,
    private readonly inFlight: Set<CallScope> | undefined,
  ) {
    super();
    if (call.cancelled) this.cancel();
    else call.once("cancelled", this.onCancelled);
    inFlight?.add(this);
  }

  get abortSource(): AbortSource {
    return this;
  }

  private cancel(): void {
    if (this.abortReason !== undefined) return;
    const expired = this.deadline !== undefined && Date.now() >= this.deadline - DEADLINE_SLACK_MS;
    this.abort(
      expired
        ? new SpillwayError(Code.DeadlineExceeded, "the call exceeded the client's deadline", { reason: "timeout" })
        : new SpillwayError(Code.Canceled, "the client cancelled the call"),
    );
  }

  end(reason: SpillwayError): void {
    if (this.abortReason === undefined) this.abort(reason);
  }

  dispose(): void {
    this.call.removeListener("cancelled", this.onCancelled);
    this.inFlight?.delete(this);
  }
}

/**
 * Adapts `call` into a {@link CallScope}. With `inFlight` (the door's set),
 * the scope is in it until disposed, so a forced shutdown can end it.
 */
export function createCallScope(call: SurfaceCall, inFlight?: Set<CallScope>): CallScope {
  return new Scope(call, deadlineOf(call), inFlight);
}
