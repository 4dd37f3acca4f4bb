/**
 * The gRPC door's cheap per-call pieces (issue 16, wave 6) against what
 * they replace: the call scope's {@link AbortSource} fires when the call is
 * cancelled with the same reasons the AbortController-based scope gave
 * (`Canceled`, or `DeadlineExceeded` past the deadline), once, callbacks
 * and the on-demand signal alike, and never after `dispose`; `admitCall`
 * grants the same options, and refuses the same way, whether the auth hook
 * answers at once (no await: the fast path) or with a promise (the path
 * every call took before); and a call ended past grpc-js's Writable
 * (`CoalescingCall.endOk`) reaches a real client with the same headers,
 * messages, status and trailers as one ended with grpc-js's `call.end()`.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, before, describe, it } from "node:test";
import type { Metadata, ServerWritableStream, StatusObject } from "@grpc/grpc-js";
import { credentials, Metadata as GrpcMetadata, Server, ServerCredentials } from "@grpc/grpc-js";
import { spillwayServiceDefinition } from "../src/doors/grpc/chunk-serializer.js";
import { directSink, doorInterceptor } from "../src/doors/grpc/write-coalescing.js";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { GenerateRequest } from "../src/gen/spillway/v1/request.js";
import { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { generateRequest } from "./helpers/grpc.js";
import { createCallScope, type SurfaceCall } from "../src/doors/grpc/call-scope.js";
import { admitCall, isThenable } from "../src/doors/grpc/auth.js";
import type { GrpcDoorContext } from "../src/doors/grpc/context.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import type { StreamEngine } from "../src/engine/stream-engine.js";

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

describe("gRPC admitCall: an auth hook that answers at once equals one that answers with a promise", () => {
  const metadata: Metadata = new GrpcMetadata();
  const ctxWith = (authorize: GrpcDoorContext["authorize"], draining = false): GrpcDoorContext => ({
    engine: {} as StreamEngine,
    authorize,
    draining: () => draining,
    active: { calls: 0 },
  });
  const principal = { key: 3 } as never;

  it("grants the same options", async () => {
    const sync = admitCall(ctxWith(() => ({ principal })), metadata, "/m");
    const async = admitCall(ctxWith(async () => ({ principal })), metadata, "/m");
    assert.equal(isThenable(sync), false, "a hook answering at once is answered at once");
    assert.equal(isThenable(async), true);
    assert.deepEqual(sync, await async);
    assert.deepEqual(sync, { principal });
  });

  it("a hook that returns nothing (or no hook) grants nothing, either way", async () => {
    assert.deepEqual(admitCall(ctxWith(() => undefined), metadata, "/m"), {});
    assert.deepEqual(await admitCall(ctxWith(async () => undefined), metadata, "/m"), {});
    assert.deepEqual(admitCall(ctxWith(undefined), metadata, "/m"), {});
  });

  it("refuses the same way: a hook's throw and its rejection carry the same error; draining refuses before the hook", async () => {
    const refusal = new SpillwayError(Code.Unauthenticated, "no key");
    assert.throws(
      () => admitCall(ctxWith(() => { throw refusal; }), metadata, "/m"),
      (e) => e === refusal,
    );
    await assert.rejects(Promise.resolve(admitCall(ctxWith(async () => { throw refusal; }), metadata, "/m")), (e) => e === refusal);
    let asked = false;
    assert.throws(
      () => admitCall(ctxWith(() => { asked = true; }, true), metadata, "/m"),
      (e) => e instanceof SpillwayError && e.code === Code.Unavailable && e.reason === "server_shutting_down",
    );
    assert.equal(asked, false);
  });
});

describe("gRPC endOk: the call ended past grpc-js's Writable equals call.end()", () => {
  let server: Server;
  let client: SpillwayServiceClient;
  const chunk = (seq: number, text: string): Chunk => ({ streamId: "s1", seq, payload: { $case: "text", value: { text } } });

  before(async () => {
    server = new Server({ interceptors: [doorInterceptor()] });
    server.addService(spillwayServiceDefinition, {
      generate: (call: ServerWritableStream<GenerateRequest, Chunk>) => {
        const sink = directSink(call.metadata);
        assert.ok(sink, "the door's interceptor is under the call");
        sink.writeMany([chunk(0, "a"), chunk(1, "b")]);
        sink.write(chunk(2, "c"));
        if (call.request.model === "fast") sink.endOk();
        else call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    client = new SpillwayServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  after(() => {
    client.close();
    server.forceShutdown();
  });

  /** What a client sees of one call: response headers, messages, status, trailers. */
  function observe(model: string): Promise<{ headers: unknown; messages: Chunk[]; status: { code: number; details: string; trailers: unknown } }> {
    return new Promise((resolve, reject) => {
      const call = client.generate(generateRequest(model, "x"));
      const messages: Chunk[] = [];
      let headers: unknown;
      call.on("metadata", (m: Metadata) => (headers = m.getMap()));
      call.on("data", (c: Chunk) => messages.push(c));
      call.on("error", reject);
      call.on("status", (s: StatusObject) => resolve({ headers, messages, status: { code: s.code, details: s.details, trailers: s.metadata.getMap() } }));
    });
  }

  it("same headers, messages, status and trailers", async () => {
    const slow = await observe("slow");
    const fast = await observe("fast");
    assert.equal(fast.status.code, 0);
    assert.equal(fast.messages.length, 3);
    assert.deepEqual(fast, slow);
  });
});
