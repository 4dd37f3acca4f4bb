/** UploadQueue: the bytes of an upload between the body parser and one reader. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UploadQueue } from "../src/doors/http/upload-queue.js";

const read = async (q: UploadQueue): Promise<string[]> => {
  const out: string[] = [];
  for await (const b of q) out.push(b.toString());
  return out;
};

describe("UploadQueue", () => {
  it("hands pieces pushed before and while the reader waits, in order, then ends", async () => {
    const q = new UploadQueue();
    q.push(Buffer.from("a"));
    const all = read(q);
    q.push(Buffer.from("b"));
    await new Promise((r) => setImmediate(r));
    q.push(Buffer.from("c"));
    q.end();
    assert.deepEqual(await all, ["a", "b", "c"]);
    assert.equal(q.size, 3);
  });

  it("a failure is thrown at the next read, dropping what was not read", async () => {
    const q = new UploadQueue();
    q.push(Buffer.from("a"));
    q.push(Buffer.from("b"));
    const it = q[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.toString(), "a");
    q.fail(new Error("too large"));
    await assert.rejects(it.next(), /too large/);
    const waiting = new UploadQueue();
    const pending = waiting.next();
    waiting.fail(new Error("gone"));
    await assert.rejects(pending, /gone/);
  });

  it("a reader that stops makes later pushes no-ops", async () => {
    const q = new UploadQueue();
    q.push(Buffer.from("a"));
    await q.return();
    q.push(Buffer.from("b"));
    assert.equal((await q.next()).done, true);
    assert.equal(q.size, 1);
  });
});
