/**
 * An AbortController that aborts when any of the given signals aborts, with
 * that signal's reason. Listeners are removed once it aborts, and by calling
 * `cleanup()`, so linking to a long-lived signal (server shutdown) leaks nothing.
 */
export interface LinkedAbortController extends AbortController {
  /** Detaches from the parent signals; call when the operation is over. */
  cleanup(): void;
  /**
   * Called once when it aborts, after the signal's listeners, with the
   * reason: the owner's hook without a listener on its own signal (adding
   * one costs about as much as the rest of the controller).
   */
  onAbort: ((reason: unknown) => void) | undefined;
  /** True once it has aborted; read without making its signal (a Node 20 signal costs ~3 µs). */
  readonly isAborted: boolean;
  /** Why it aborted (undefined until then). */
  readonly abortReason: unknown;
  /**
   * The same abort as an {@link AbortSource} (callbacks, the signal made on
   * demand): for a provider that needs no AbortSignal. Made once.
   */
  readonly source: AbortSource;
}

/**
 * A cheap abort source for the engine's calls where an AbortSignal would
 * cost more than the call's other bookkeeping (in Node 20 creating a
 * signal costs ~2 µs and each listener ~1 µs): the HTTP exchange is one.
 * `onAbort` callbacks run once, when it aborts; `signal` is a real signal,
 * made only when something needs one (a retry's wait).
 */
export interface AbortSource {
  readonly aborted: boolean;
  /** Why it aborted (undefined until then). */
  readonly abortReason: unknown;
  /** Calls `fn` with the reason when it aborts (at once if it has). */
  onAbort(fn: (reason: unknown) => void): void;
  /** An AbortSignal that aborts with it. */
  readonly signal: AbortSignal;
}

/**
 * An {@link AbortSource} its owner aborts (`abort(reason)`, once): callbacks
 * are kept in an array made at the first `onAbort`, and the signal (its
 * AbortController) is made on demand — most calls never read it — aborted
 * at once with the reason when made after the abort. At abort the signal's
 * listeners run first, then the callbacks in the order they were added.
 * The HTTP exchange's and the gRPC call scope's source (one object per
 * request, no closure).
 */
export class OnDemandAbortSource implements AbortSource {
  abortReason: unknown = undefined;
  private hooks: Array<(reason: unknown) => void> | undefined;
  private controller: AbortController | undefined;

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  onAbort(fn: (reason: unknown) => void): void {
    if (this.abortReason !== undefined) fn(this.abortReason);
    else (this.hooks ??= []).push(fn);
  }

  /** Aborts with `reason` (not undefined): the signal, if made, then the callbacks; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    const hooks = this.hooks;
    this.hooks = undefined;
    if (hooks) for (const h of hooks) h(reason);
  }
}

/**
 * The controller itself is the listener on its parents (`handleEvent`), and
 * `abort()` detaches it: per call that is no closure and no listener on its
 * own signal (this runs once per request on the hot path).
 */
class Linked extends AbortController implements LinkedAbortController {
  isAborted = false;
  abortReason: unknown = undefined;
  private parents: AbortSignal[] | undefined;
  /** Callbacks of {@link Linked.source} users, run once at abort after the hook. */
  private callbacks: Array<(reason: unknown) => void> | undefined;
  private madeSource: AbortSource | undefined;
  /** The group it belongs to until it aborts or is cleaned up. */
  group: Set<Linked> | undefined;
  onAbort: ((reason: unknown) => void) | undefined;

  /** Set while linked to a source (a source's callback cannot be removed: cleanup makes it a no-op). */
  private sourceLinked = false;

  /** Aborts when `source` does (a cheap source: a callback, no listener). */
  linkSource(source: AbortSource): void {
    this.sourceLinked = true;
    source.onAbort((reason) => {
      if (this.sourceLinked) this.abort(reason);
    });
  }

  link(signal: AbortSignal): void {
    (this.parents ??= []).push(signal);
    signal.addEventListener("abort", this);
  }

  handleEvent(ev: Event): void {
    this.abort((ev.target as AbortSignal).reason);
  }

  override abort(reason?: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.cleanup();
    super.abort(reason);
    // The signal's reason: an AbortError DOMException when none was given.
    const why: unknown = this.signal.reason;
    this.abortReason = why;
    const hook = this.onAbort;
    this.onAbort = undefined;
    hook?.(why);
    const callbacks = this.callbacks;
    this.callbacks = undefined;
    if (callbacks) for (const fn of callbacks) fn(why);
  }

  get source(): AbortSource {
    return (this.madeSource ??= new LinkedSource(this));
  }

  /** Runs `fn` with the reason when it aborts (at once if it has). */
  whenAborted(fn: (reason: unknown) => void): void {
    if (this.isAborted) fn(this.abortReason);
    else (this.callbacks ??= []).push(fn);
  }

  cleanup(): void {
    this.sourceLinked = false;
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

/** A {@link Linked} controller seen as an {@link AbortSource}. */
class LinkedSource implements AbortSource {
  constructor(private readonly controller: Linked) {}

  get aborted(): boolean {
    return this.controller.isAborted;
  }

  get abortReason(): unknown {
    return this.controller.abortReason;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  onAbort(fn: (reason: unknown) => void): void {
    this.controller.whenAborted(fn);
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
  /** {@link AbortGroup.link}, and also to a cheap {@link AbortSource} when given. */
  linkWith(source: AbortSource | undefined, ...signals: ReadonlyArray<AbortSignal | undefined>): LinkedAbortController;
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
  const group: AbortGroup = {
    link(...signals) {
      return group.linkWith(undefined, ...signals);
    },
    linkWith(source, ...signals) {
      const controller = linked(signals);
      if (source && !controller.isAborted) {
        if (source.aborted) controller.abort(source.abortReason);
        else controller.linkSource(source);
      }
      if (controller.isAborted) return controller;
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
  return group;
}
