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

  describe("flow control", () => {
    const flowed = (highWater: number) => {
      const calls: string[] = [];
      const q = new UploadQueue({ pause: () => calls.push("pause"), resume: () => calls.push("resume"), highWater });
      return { q, calls };
    };
    const piece = (n: number): Buffer => Buffer.alloc(n, 1);

    it("never pauses before the reader's first read (a held file must be read to the end of its form)", () => {
      const { q, calls } = flowed(10);
      for (let i = 0; i < 10; i++) q.push(piece(5));
      assert.deepEqual(calls, []);
      assert.equal(q.queued, 50);
    });

    it("pauses once the backlog passes the high-water mark while reading, resumes at half of it", async () => {
      const { q, calls } = flowed(10);
      await Promise.all([q.next(), Promise.resolve(q.push(piece(4)))]);
      q.push(piece(6));
      q.push(piece(6));
      assert.deepEqual(calls, ["pause"]);
      q.push(piece(6));
      assert.deepEqual(calls, ["pause"], "paused once");
      await q.next(); // 12 left
      await q.next(); // 6 left
      assert.deepEqual(calls, ["pause"]);
      await q.next(); // 0 left: at most half
      assert.deepEqual(calls, ["pause", "resume"]);
    });

    it("resumes when the reader stops, the upload fails or the part ends, so the rest of the body can be read", async () => {
      for (const finish of [(q: UploadQueue) => void q.return(), (q: UploadQueue) => q.fail(new Error("x")), (q: UploadQueue) => q.end()]) {
        const { q, calls } = flowed(4);
        void q.next();
        q.push(piece(1));
        q.push(piece(5));
        assert.deepEqual(calls, ["pause"]);
        finish(q);
        assert.deepEqual(calls, ["pause", "resume"]);
      }
    });
  });
});
