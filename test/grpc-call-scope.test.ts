/**
 * The gRPC call scope's cheap abort (issue 16, wave 6) against the
 * AbortController it replaces: its {@link AbortSource} fires when the call is
 * cancelled with the same reasons the AbortController-based scope gave
 * (`Canceled`, or `DeadlineExceeded` past the deadline), once, callbacks
 * and the on-demand signal alike, and never after `dispose`.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { createCallScope, type SurfaceCall } from "../src/doors/grpc/call-scope.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";

/** A grpc-js call as far as the scope uses it: `cancelled`, the deadline, the `cancelled` event. */
class FakeCall extends EventEmitter implements SurfaceCall {
  cancelled = false;
  constructor(private readonly deadline: number | Date = Infinity) {
    super();
  }
  getDeadline(): number | Date {
    return this.deadline;
  }
  cancel(): void {
    this.cancelled = true;
    this.emit("cancelled");
  }
}

/** What the scope gave before this wave: an AbortController aborted on `cancelled` (the reference). */
function referenceScope(call: SurfaceCall, deadline: number | undefined): AbortSignal {
  const controller = new AbortController();
  const onCancelled = (): void => {
    const expired = deadline !== undefined && Date.now() >= deadline - 20;
    controller.abort(
      expired
        ? new SpillwayError(Code.DeadlineExceeded, "the call exceeded the client's deadline", { reason: "timeout" })
        : new SpillwayError(Code.Canceled, "the client cancelled the call"),
    );
  };
  if (call.cancelled) onCancelled();
  else call.once("cancelled", onCancelled);
  return controller.signal;
}

function sameError(a: unknown, b: unknown): void {
  assert.ok(a instanceof SpillwayError && b instanceof SpillwayError, `${String(a)} / ${String(b)}`);
  assert.equal(a.code, b.code);
  assert.equal(a.message, b.message);
  assert.equal(a.reason, b.reason);
}

describe("gRPC call scope: the cheap abort source equals the signal it replaces", () => {
  for (const [name, deadline] of [
    ["no deadline: Canceled", Infinity],
    ["deadline passed: DeadlineExceeded", Date.now() - 1000],
    ["deadline far ahead: Canceled", Date.now() + 3_600_000],
    ["deadline as a Date", new Date(Date.now() - 1000)],
  ] as const) {
    it(name, () => {
      const call = new FakeCall(deadline);
      const scope = createCallScope(call);
      const reference = referenceScope(call, scope.deadline);
      const reasons: unknown[] = [];
      scope.abortSource.onAbort((r) => reasons.push(r));
      assert.equal(scope.abortSource.aborted, false);
      call.cancel();
      call.cancel(); // grpc-js may report the end again: still once
      assert.equal(reasons.length, 1, "callbacks run once");
      assert.equal(scope.abortSource.aborted, true);
      sameError(reasons[0], reference.reason);
      sameError(scope.abortSource.abortReason, reference.reason);
      // The signal made after the abort is aborted already, with the same reason.
      assert.equal(scope.signal.aborted, true);
      assert.equal(scope.signal.reason, scope.abortSource.abortReason);
      // A callback added after the abort runs at once.
      let late: unknown;
      scope.abortSource.onAbort((r) => (late = r));
      assert.equal(late, scope.abortSource.abortReason);
      assert.equal(scope.deadline, Number.isFinite(+deadline) ? +deadline : undefined);
    });
  }

  it("a signal read before the abort aborts with it: its listeners first, then the callbacks, one reason", () => {
    const call = new FakeCall();
    const scope = createCallScope(call);
    const signal = scope.signal;
    assert.equal(scope.signal, signal, "one signal per scope");
    const order: string[] = [];
    signal.addEventListener("abort", () => order.push("signal"));
    scope.abortSource.onAbort(() => order.push("callback"));
    call.cancel();
    assert.deepEqual(order, ["signal", "callback"]);
    assert.equal(signal.reason, scope.abortSource.abortReason);
  });

  it("a call cancelled before the scope is made: aborted at once, like the reference", () => {
    const call = new FakeCall();
    call.cancelled = true;
    const scope = createCallScope(call);
    const reference = referenceScope(call, undefined);
    assert.equal(scope.abortSource.aborted, true);
    sameError(scope.abortSource.abortReason, reference.reason);
  });

  it("after dispose a cancel (grpc-js reports every end as one) aborts nothing and leaves no listener", () => {
    const call = new FakeCall();
    const scope = createCallScope(call);
    let fired = false;
    scope.abortSource.onAbort(() => (fired = true));
    assert.equal(call.listenerCount("cancelled"), 1);
    scope.dispose();
    assert.equal(call.listenerCount("cancelled"), 0);
    call.cancel();
    assert.equal(fired, false);
    assert.equal(scope.abortSource.aborted, false);
    assert.equal(scope.signal.aborted, false);
  });
});
