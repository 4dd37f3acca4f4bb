/**
 * The Redis stream log on its own, against a real redis-server: chunks are
 * written one stream entry per batch, and every read — after a seq that
 * falls inside a batch, following live, a snapshot — yields exactly the
 * chunks after it, once each, in order; a duplicate batch is refused; a
 * stream whose writer is gone ends with an `instance_lost` failure after
 * the last logged chunk.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Chunk } from "../src/gen/spillway/v1/chunk.js";
import { encodeChunk } from "../src/engine/durable/durable-streams.js";
import { RedisStreamLog } from "../src/engine/durable/redis-stream-log.js";
import type { LogEntry, StreamRecord } from "../src/engine/durable/stream-log.js";
import { Redis } from "ioredis";
import { redisSkip, startRedis, type TestRedis } from "./helpers/redis.js";

const entry = (id: string, seq: number, last = false): LogEntry => ({
  seq,
  at: 1_700_000_000_000 + seq,
  chunk: encodeChunk({ streamId: id, seq, payload: { $case: "text", value: { text: `t${seq}` } } }),
  ...(last ? { last } : {}),
});
const record = (id: string): StreamRecord => ({ id, owner: "0:k", createdAt: 1, background: true, request: '{"a":1}', status: "queued" });
const seqs = (es: LogEntry[]): number[] => es.map((e) => e.seq);

async function read(log: RedisStreamLog, id: string, after: number, follow: boolean): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of log.read(id, after, AbortSignal.timeout(10_000), follow)) out.push(e);
  return out;
}

describe("Redis stream log (batched entries)", { skip: redisSkip }, () => {
  let redis: TestRedis;
  let log: RedisStreamLog;
  before(async () => {
    redis = await startRedis();
    log = new RedisStreamLog({ url: redis.url, keyPrefix: "t", commandTimeoutMs: 2000, maxLifeMs: 60_000, aliveTtlMs: 300, blockMs: 100 });
  });
  after(async () => {
    await log.close();
    await redis.stop();
  });

  it("reads after a seq inside a batch, follows live across batches, and refuses a duplicate batch", async () => {
    const id = "a".repeat(32);
    await log.create(record(id), 60_000);
    await log.append(id, [0, 1, 2, 3, 4].map((s) => entry(id, s)));
    assert.deepEqual(seqs(await read(log, id, 2, false)), [3, 4], "a snapshot after seq 2 drops the batch's first three");
    const following = read(log, id, 3, true);
    await log.append(id, [5, 6].map((s) => entry(id, s)));
    await log.append(id, [entry(id, 7), entry(id, 8, true)]);
    await log.setStatus(id, "in_progress", '{"a":2}');
    assert.equal((await log.get(id))!.request, '{"a":2}', "setStatus with a request replaces it");
    await log.setStatus(id, "completed");
    const got = await following;
    assert.deepEqual(seqs(got), [4, 5, 6, 7, 8]);
    assert.equal(got.at(-1)!.last, true);
    const decoded = Chunk.decode(got[0]!.chunk);
    assert.equal(decoded.payload?.$case === "text" && decoded.payload.value.text, "t4");
    assert.equal(got[0]!.at, 1_700_000_000_004);
    assert.deepEqual(seqs(await read(log, id, -1, true)), [0, 1, 2, 3, 4, 5, 6, 7, 8], "a full replay of a finished stream");
    await assert.rejects(log.append(id, [entry(id, 8, true)]), "an entry id that does not grow is refused by Redis");
  });

  it("a stream whose writer stopped heartbeating ends with an instance_lost failure after its last chunk", async () => {
    const id = "b".repeat(32);
    await log.create(record(id), 60_000);
    await log.append(id, [entry(id, 0), entry(id, 1)]);
    // No heartbeat: the alive key (300 ms) lapses and the follower fails the stream.
    const got = await read(log, id, 0, true);
    assert.deepEqual(seqs(got), [1, 2]);
    const failure = Chunk.decode(got[1]!.chunk);
    assert.equal(failure.payload?.$case, "error");
    assert.equal(failure.payload?.$case === "error" && failure.payload.value.code, "instance_lost");
    assert.equal((await log.get(id))!.status, "failed");
  });

  it("a new stream's writer is alive before its record exists (a reader elsewhere never fails a stream that just started)", async () => {
    const id = "c".repeat(32);
    const monitor = new Redis(redis.url);
    const seen: string[] = [];
    const mon = await monitor.monitor();
    mon.on("monitor", (_time: string, args: string[]) => {
      if (args.some((a) => a.includes(id))) seen.push(`${args[0]!.toLowerCase()} ${args[1]}`);
    });
    await log.create(record(id), 60_000);
    // MONITOR lines arrive asynchronously: wait until the three commands are in.
    while (seen.length < 3) await new Promise((r) => setTimeout(r, 10));
    mon.disconnect();
    monitor.disconnect();
    const k = `t:stream:{${id}}`;
    assert.ok(seen.indexOf(`set ${k}:alive`) >= 0, `alive key written: ${seen.join(", ")}`);
    assert.ok(seen.indexOf(`set ${k}:alive`) < seen.indexOf(`hset ${k}`), `alive before the record: ${seen.join(", ")}`);
  });
});
