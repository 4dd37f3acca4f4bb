/**
 * `npx tsx load/grpc-scope-bench.ts`: CPU per call of the gRPC door's call
 * scope as the hot path uses it — made on a call, linked by the engine's
 * attempt, listened to by the pipe, then cleaned up and disposed — with
 * the cheap abort source (src/doors/grpc/call-scope.ts) against the
 * AbortController + AbortSignal listeners it replaced (wave 6, issue 16).
 * Medians of 7 runs of 200,000 calls, user + system CPU.
 */
import { EventEmitter } from "node:events";
import { createCallScope } from "../src/doors/grpc/call-scope.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { createAbortGroup } from "../src/engine/signals.js";

/** A grpc-js call as the scope sees it. */
class Call extends EventEmitter {
  cancelled = false;
  getDeadline(): number {
    return Infinity;
  }
}

const group = createAbortGroup(new AbortController().signal);

/** Before: an AbortController per call; the engine links its signal, the pipe listens on it. */
function withSignal(): void {
  const call = new Call();
  const controller = new AbortController();
  const onCancelled = (): void => controller.abort(new SpillwayError(Code.Canceled, "the client cancelled the call"));
  call.once("cancelled", onCancelled);
  const signal = controller.signal;
  const linked = group.linkWith(undefined, signal);
  const onAbort = (): void => undefined;
  signal.addEventListener("abort", onAbort, { once: true });
  signal.removeEventListener("abort", onAbort);
  linked.cleanup();
  call.removeListener("cancelled", onCancelled);
}

/** Now: the scope's abort source; the engine and the pipe each add a callback. */
function withSource(): void {
  const call = new Call();
  const scope = createCallScope(call);
  const linked = group.linkWith(scope.abortSource);
  let over = false;
  scope.abortSource.onAbort(() => {
    if (over) return;
  });
  over = true;
  linked.cleanup();
  scope.dispose();
}

function bench(name: string, fn: () => void, n = 200_000): void {
  for (let i = 0; i < 20_000; i++) fn();
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const u = process.cpuUsage(t);
    runs.push((u.user + u.system) / n);
  }
  runs.sort((a, b) => a - b);
  console.log(`${name}: ${runs[3]!.toFixed(2)} µs per call (min ${runs[0]!.toFixed(2)})`);
}

for (let k = 0; k < 2; k++) {
  bench("call scope with an AbortController (before)", withSignal);
  bench("call scope with an AbortSource (now)", withSource);
}
