/**
 * An AbortController that aborts when any of the given signals aborts, with
 * that signal's reason. Listeners are removed once it aborts, and by calling
 * `cleanup()`, so linking to a long-lived signal (server shutdown) leaks nothing.
 */
export interface LinkedAbortController extends AbortController {
  /** Detaches from the parent signals; call when the operation is over. */
  cleanup(): void;
}

/**
 * The controller itself is the listener on its parents (`handleEvent`), and
 * `abort()` detaches it: per call that is no closure and no listener on its
 * own signal (this runs once per request on the hot path).
 */
class Linked extends AbortController implements LinkedAbortController {
  private parents: AbortSignal[] | undefined;
  /** The group it belongs to until it aborts or is cleaned up. */
  group: Set<Linked> | undefined;

  link(signal: AbortSignal): void {
    (this.parents ??= []).push(signal);
    signal.addEventListener("abort", this);
  }

  handleEvent(ev: Event): void {
    this.abort((ev.target as AbortSignal).reason);
  }

  override abort(reason?: unknown): void {
    this.cleanup();
    super.abort(reason);
  }

  cleanup(): void {
    const parents = this.parents;
    if (parents) {
      this.parents = undefined;
      for (const p of parents) p.removeEventListener("abort", this);
    }
    if (this.group) {
      this.group.delete(this);
      this.group = undefined;
    }
  }
}

function linked(signals: ReadonlyArray<AbortSignal | undefined>): Linked {
  const controller = new Linked();
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    controller.link(signal);
  }
  return controller;
}

/** Creates a {@link LinkedAbortController} linked to every defined signal. */
export function createLinkedAbortController(...signals: ReadonlyArray<AbortSignal | undefined>): LinkedAbortController {
  return linked(signals);
}

/**
 * Controllers that all abort when one long-lived signal does (server
 * shutdown), without a listener on that signal per controller: the group
 * holds one listener and a set of its live members. A member leaves the set
 * when it aborts or is cleaned up.
 */
export interface AbortGroup {
  /** A {@link LinkedAbortController} linked to `signals` and to the group's signal (aborted at once when that one is). */
  link(...signals: ReadonlyArray<AbortSignal | undefined>): LinkedAbortController;
  /** Members alive now (for tests). */
  readonly size: number;
}

/** Creates an {@link AbortGroup} over `signal` (none: the group never aborts its members). */
export function createAbortGroup(signal: AbortSignal | undefined): AbortGroup {
  const members = new Set<Linked>();
  signal?.addEventListener(
    "abort",
    () => {
      for (const c of [...members]) c.abort(signal.reason);
    },
    { once: true },
  );
  return {
    link(...signals) {
      const controller = linked(signals);
      if (controller.signal.aborted) return controller;
      if (signal?.aborted) {
        controller.abort(signal.reason);
        return controller;
      }
      if (signal) {
        controller.group = members;
        members.add(controller);
      }
      return controller;
    },
    get size() {
      return members.size;
    },
  };
}
