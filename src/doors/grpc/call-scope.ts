import type { Deadline } from "@grpc/grpc-js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";

/** The parts of a grpc-js server call (any kind) that carry cancellation and the deadline. */
export interface SurfaceCall {
  readonly cancelled: boolean;
  getDeadline(): Deadline;
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/**
 * A gRPC call adapted to what the engine understands: one AbortSignal that
 * aborts when the call is cancelled (client cancel, connection loss, or the
 * deadline enforced by grpc-js), and the client's deadline as epoch ms.
 */
export interface CallScope {
  /**
   * Aborts with a `Canceled` SpillwayError when the client cancels, or a
   * `DeadlineExceeded` one when the call was cancelled because its deadline
   * passed.
   */
  readonly signal: AbortSignal;
  /** The client's deadline (epoch ms); `undefined` when it set none. */
  readonly deadline: number | undefined;
  /**
   * Detaches from the call. Call it once the handler is done: grpc-js also
   * reports a call that ended normally as cancelled, which must not count.
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

/** Adapts `call` into a {@link CallScope}. */
export function createCallScope(call: SurfaceCall): CallScope {
  const controller = new AbortController();
  const deadline = deadlineOf(call);
  const onCancelled = (): void => {
    const expired = deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS;
    controller.abort(
      expired
        ? new SpillwayError(Code.DeadlineExceeded, "the call exceeded the client's deadline", { reason: "timeout" })
        : new SpillwayError(Code.Canceled, "the client cancelled the call"),
    );
  };
  if (call.cancelled) onCancelled();
  else call.once("cancelled", onCancelled);
  return {
    signal: controller.signal,
    deadline,
    dispose: () => {
      call.removeListener("cancelled", onCancelled);
    },
  };
}
