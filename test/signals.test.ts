/**
 * Linked abort controllers and abort groups (src/engine/signals.ts): a
 * parent's abort reaches the child with its reason, cleanup detaches from
 * every parent, and a group aborts its live members from one listener.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAbortGroup, createLinkedAbortController, type AbortSource } from "../src/engine/signals.js";

/** A minimal abort source (as the HTTP exchange implements it). */
function source(): AbortSource & { abort(reason: unknown): void } {
  let reason: unknown;
  const hooks: Array<(r: unknown) => void> = [];
  return {
    get aborted() {
      return reason !== undefined;
    },
    get abortReason() {
      return reason;
    },
    onAbort: (fn) => void (reason !== undefined ? fn(reason) : hooks.push(fn)),
    get signal(): AbortSignal {
      throw new Error("not needed");
    },
    abort(r) {
      reason = r;
      for (const h of hooks) h(r);
    },
  };
}

describe("linked abort controllers", () => {
  it("aborts with the first parent's reason, and is detached from the others", () => {
    const a = new AbortController();
    const b = new AbortController();
    const c = createLinkedAbortController(a.signal, undefined, b.signal);
    a.abort("a went");
    assert.equal(c.signal.aborted, true);
    assert.equal(c.signal.reason, "a went");
    b.abort("b went");
    assert.equal(c.signal.reason, "a went");
  });

  it("starts aborted when a parent already is", () => {
    const a = new AbortController();
    a.abort("early");
    const c = createLinkedAbortController(undefined, a.signal);
    assert.equal(c.signal.reason, "early");
  });

  it("after cleanup no parent reaches it", () => {
    const a = new AbortController();
    const c = createLinkedAbortController(a.signal);
    c.cleanup();
    a.abort("late");
    assert.equal(c.signal.aborted, false);
  });

  it("aborting it directly runs its own listeners once and detaches it", () => {
    const a = new AbortController();
    const c = createLinkedAbortController(a.signal);
    let calls = 0;
    c.signal.addEventListener("abort", () => calls++);
    c.abort("own");
    a.abort("parent");
    assert.equal(calls, 1);
    assert.equal(c.signal.reason, "own");
  });
});

describe("a linked controller as an abort source (what providers get as ctx.abortSource)", () => {
  it("tells aborted and the reason without its signal, runs callbacks once with the reason, and at once when already aborted", () => {
    const parent = new AbortController();
    const c = createLinkedAbortController(parent.signal);
    const src = c.source;
    assert.equal(src, c.source, "made once");
    assert.equal(src.aborted, false);
    assert.equal(c.isAborted, false);
    const seen: unknown[] = [];
    src.onAbort((r) => seen.push(r));
    const reason = new Error("client left");
    parent.abort(reason);
    assert.equal(src.aborted, true);
    assert.equal(c.isAborted, true);
    assert.equal(src.abortReason, reason);
    assert.equal(src.signal.reason, reason);
    c.abort(new Error("again"));
    assert.deepEqual([...seen], [reason], "once");
    src.onAbort((r) => seen.push(r));
    assert.deepEqual(seen, [reason, reason], "a late callback runs at once");
  });

  it("an abort without a reason gives the signal's AbortError to hooks and callbacks", () => {
    const c = createLinkedAbortController();
    let hook: unknown;
    let cb: unknown;
    c.onAbort = (r) => (hook = r);
    c.source.onAbort((r) => (cb = r));
    c.abort();
    assert.equal((hook as Error).name, "AbortError");
    assert.equal(cb, hook);
    assert.equal(c.abortReason, c.signal.reason);
  });
});

describe("abort groups", () => {
  it("aborts every live member with the group signal's reason; cleaned-up members are left out", () => {
    const shutdown = new AbortController();
    const group = createAbortGroup(shutdown.signal);
    const live = group.link();
    const client = new AbortController();
    const linked = group.link(client.signal);
    const done = group.link();
    done.cleanup();
    assert.equal(group.size, 2);
    shutdown.abort("shutting down");
    assert.equal(live.signal.reason, "shutting down");
    assert.equal(linked.signal.reason, "shutting down");
    assert.equal(done.signal.aborted, false);
    assert.equal(group.size, 0);
  });

  it("a member leaves the group when its own parent aborts it", () => {
    const shutdown = new AbortController();
    const group = createAbortGroup(shutdown.signal);
    const client = new AbortController();
    const c = group.link(client.signal);
    client.abort("client left");
    assert.equal(c.signal.reason, "client left");
    assert.equal(group.size, 0);
  });

  it("links aborted at once after the group's signal aborted", () => {
    const shutdown = new AbortController();
    const group = createAbortGroup(shutdown.signal);
    shutdown.abort("gone");
    assert.equal(group.link().signal.reason, "gone");
  });

  it("without a signal, members are plain linked controllers", () => {
    const group = createAbortGroup(undefined);
    const a = new AbortController();
    const c = group.link(a.signal);
    assert.equal(group.size, 0);
    a.abort("x");
    assert.equal(c.signal.reason, "x");
  });

  it("links to a cheap abort source: its abort reaches the member, not after cleanup", () => {
    const group = createAbortGroup(new AbortController().signal);
    const s1 = source();
    const c1 = group.linkWith(s1);
    s1.abort("client left");
    assert.equal(c1.signal.reason, "client left");
    const s2 = source();
    const c2 = group.linkWith(s2);
    c2.cleanup();
    s2.abort("late");
    assert.equal(c2.signal.aborted, false);
    const s3 = source();
    s3.abort("already");
    assert.equal(group.linkWith(s3).signal.reason, "already");
  });
});

describe("the onAbort hook", () => {
  it("runs once, after the signal's listeners, with the reason", () => {
    const parent = new AbortController();
    const c = createLinkedAbortController(parent.signal);
    const seen: string[] = [];
    c.signal.addEventListener("abort", () => seen.push("listener"));
    c.onAbort = (r) => seen.push(`hook:${String(r)}`);
    parent.abort("p");
    c.abort("again");
    assert.deepEqual(seen, ["listener", "hook:p"]);
  });
});
