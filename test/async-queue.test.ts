/**
 * The realtime door's push-to-pull queue (src/doors/ws/async-queue.ts), which
 * carries every 20 ms of a session's audio to its transcription: `tryNext`
 * hands over what is queued without a promise, a waiting `next()` is
 * resolved by the push itself, and the end and failures keep their order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AsyncQueue } from "../src/doors/ws/async-queue.js";

describe("AsyncQueue", () => {
  it("tryNext hands over queued values, undefined when empty, then the end after close", () => {
    const q = new AsyncQueue<number>();
    const it = q[Symbol.asyncIterator]();
    assert.equal(it.tryNext!(), undefined);
    q.push(1);
    q.push(2);
    assert.deepEqual(it.tryNext!(), { value: 1, done: false });
    assert.deepEqual(it.tryNext!(), { value: 2, done: false });
    assert.equal(it.tryNext!(), undefined);
    q.push(3);
    q.close();
    q.push(4);
    assert.deepEqual(it.tryNext!(), { value: 3, done: false });
    assert.deepEqual(it.tryNext!(), { value: undefined, done: true });
    assert.deepEqual(it.tryNext!(), { value: undefined, done: true });
  });

  it("a waiting next() gets the pushed value one microtask after the push", async () => {
    const q = new AsyncQueue<string>();
    const it = q[Symbol.asyncIterator]();
    let got: IteratorResult<string> | undefined;
    void it.next().then((r) => (got = r));
    await Promise.resolve();
    assert.equal(got, undefined);
    q.push("a");
    await Promise.resolve();
    assert.deepEqual(got, { value: "a", done: false });
    // The end reaches a waiting reader the same way.
    void it.next().then((r) => (got = r));
    q.close();
    await Promise.resolve();
    assert.deepEqual(got, { value: undefined, done: true });
  });

  it("a failure drops what is queued: tryNext throws it once, next() rejects with it, then the iterator is done", async () => {
    const q = new AsyncQueue<number>();
    const a = q[Symbol.asyncIterator]();
    q.push(1);
    q.fail(new Error("boom"));
    assert.throws(() => a.tryNext!(), /boom/);
    assert.deepEqual(a.tryNext!(), { value: undefined, done: true });
    const q2 = new AsyncQueue<number>();
    const b = q2[Symbol.asyncIterator]();
    const waiting = b.next();
    q2.fail(new Error("late"));
    await assert.rejects(waiting, /late/);
    assert.deepEqual(await b.next(), { value: undefined, done: true });
  });

  it("for await reads every value in order, pushed before and while it waits, and return() stops it", async () => {
    const q = new AsyncQueue<number>();
    q.push(0);
    const seen: number[] = [];
    const reader = (async () => {
      for await (const v of q) {
        seen.push(v);
        if (v === 5) break;
      }
    })();
    for (let i = 1; i <= 6; i++) {
      q.push(i);
      if (i % 2 === 0) await new Promise((r) => setImmediate(r));
    }
    await reader;
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
  });
});
