/**
 * The embedded stream log on its own: entries packed into one buffer per
 * log read back exactly (bytes, seq, time, the last flag), a follower sees
 * entries appended after it started, retention drops finished logs, and the
 * bounds evict the logs that finished first, never a running one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Chunk, Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import { encodeChunk } from "../src/engine/durable/durable-streams.js";
import { MemoryStreamLog } from "../src/engine/durable/memory-stream-log.js";
import type { LogEntry, StreamRecord } from "../src/engine/durable/stream-log.js";

const record = (id: string): StreamRecord => ({ id, owner: "0:k", createdAt: 1, background: false, request: "{}", status: "in_progress" });
const text = (id: string, seq: number, t: string): Uint8Array => encodeChunk({ streamId: id, seq, payload: { $case: "text", value: { text: t } } });

async function all(log: MemoryStreamLog, id: string, after = -1): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of log.read(id, after, new AbortController().signal, false)) out.push(e);
  return out;
}

describe("embedded stream log", () => {
  it("reads back every entry as appended, past several buffer growths, and after the end trims the buffer", async () => {
    const log = new MemoryStreamLog();
    await log.create(record("a"), 60_000);
    const words = Array.from({ length: 300 }, (_, i) => `word ${i} ${"x".repeat(i % 40)}`);
    for (const [i, w] of words.entries()) log.appendNow("a", [{ seq: i, at: 1_700_000_000_000 + i, chunk: text("a", i, w) }]);
    const fin = encodeChunk({ streamId: "a", seq: 300, payload: { $case: "finish", value: { reason: Finish_Reason.REASON_STOP, stopSequence: "" } } });
    await log.append("a", [{ seq: 300, at: 1_700_000_000_300, chunk: fin, last: true }]);
    await log.setStatus("a", "completed");
    const back = await all(log, "a");
    assert.equal(back.length, 301);
    for (const [i, e] of back.slice(0, 300).entries()) {
      assert.equal(e.seq, i);
      assert.equal(e.at, 1_700_000_000_000 + i);
      assert.equal(e.last, undefined);
      const c = Chunk.decode(e.chunk);
      assert.equal(c.payload?.$case === "text" && c.payload.value.text, words[i]);
    }
    assert.equal(back[300]!.last, true);
    assert.deepEqual(back[300]!.chunk, fin);
    assert.deepEqual((await all(log, "a", 297)).map((e) => e.seq), [298, 299, 300], "after a seq");
    assert.deepEqual(log.tail("a"), { lastSeq: 300, ended: true });
    const chunkBytes = words.reduce((n, w, i) => n + text("a", i, w).length, fin.length);
    assert.equal(log.heldBytes, chunkBytes + 301 * 17, "held = chunk bytes + a 17-byte header each, nothing spare after the end");
  });

  it("a follower gets entries appended after it started, then ends at the terminal status", async () => {
    const log = new MemoryStreamLog();
    await log.create(record("f"), 60_000);
    log.appendNow("f", [{ seq: 0, at: 1, chunk: text("f", 0, "one") }]);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const e of log.read("f", -1, new AbortController().signal)) seen.push(e.seq);
    })();
    await new Promise((r) => setImmediate(r));
    log.appendNow("f", [
      { seq: 1, at: 2, chunk: text("f", 1, "two") },
      { seq: 2, at: 3, chunk: text("f", 2, "three"), last: true },
    ]);
    await log.setStatus("f", "completed");
    await reading;
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it("drops a finished log after its retention, and evicts the logs that finished first, never a running one", async () => {
    let now = 1000;
    const log = new MemoryStreamLog({ maxCount: 3, now: () => now });
    await log.create(record("old"), 500);
    await log.setStatus("old", "completed");
    now = 1600; // past old's retention
    assert.equal(await log.get("old"), undefined, "expired");

    for (const id of ["r", "b", "c"]) await log.create(record(id), 60_000);
    await log.setStatus("c", "completed"); // c finished before b
    await log.setStatus("b", "completed");
    await log.create(record("d"), 60_000); // full: evicts c (finished first)
    assert.equal(await log.get("c"), undefined);
    assert.ok(await log.get("b"));
    assert.ok(await log.get("r"), "running r is kept");
    await log.setStatus("b", "failed");
    await log.create(record("e"), 60_000); // evicts b
    assert.equal(await log.get("b"), undefined);
    // r, d, e all running: a new one is refused rather than evicting any.
    await assert.rejects(log.create(record("x"), 60_000), (e: Error & { reason?: string }) => e.reason === "stream_log_full");
    assert.equal(log.size, 3);
  });
});
