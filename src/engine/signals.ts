/**
 * An AbortController that aborts when any of the given signals aborts, with
 * that signal's reason. Listeners are removed once it aborts, and by calling
 * `cleanup()`, so linking to a long-lived signal (server shutdown) leaks nothing.
 */
export interface LinkedAbortController extends AbortController {
  /** Detaches from the parent signals; call when the operation is over. */
  cleanup(): void;
}

/** Creates a {@link LinkedAbortController} linked to every defined signal. */
export function createLinkedAbortController(
  ...signals: ReadonlyArray<AbortSignal | undefined>
): LinkedAbortController {
  const controller = new AbortController() as LinkedAbortController;
  const parents: AbortSignal[] = [];
  const onAbort = function (this: AbortSignal): void {
    controller.abort(this.reason);
  };
  controller.cleanup = () => {
    for (const p of parents) p.removeEventListener("abort", onAbort);
    parents.length = 0;
  };
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    parents.push(signal);
    signal.addEventListener("abort", onAbort);
  }
  controller.signal.addEventListener("abort", () => controller.cleanup(), { once: true });
  return controller;
}
