/**
 * The AWS event-stream push reader and the Converse mapper on their own:
 * messages split at every byte, several messages in one read, a corrupted
 * CRC, a frame cut in the middle, reads without a whole message counting as
 * life, and contentBlockIndex vs tool index.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import type { ChunkPayload } from "../src/engine/payload.js";
import { SpillwayError } from "../src/engine/errors.js";
import { converseStreamPayloads } from "../src/providers/bedrock/converse-stream.js";
import { encodeFrame, messageEnd, messageStart, textBlock, toolBlock, type Frame } from "./helpers/fake-bedrock.js";

async function collect(it: AsyncIterable<ChunkPayload>): Promise<{ payloads: ChunkPayload[]; error: unknown }> {
  const payloads: ChunkPayload[] = [];
  try {
    for await (const p of it) payloads.push(p);
    return { payloads, error: undefined };
  } catch (error) {
    return { payloads, error };
  }
}

function open(jsonTool?: string): { body: PassThrough; stream: AsyncIterableIterator<ChunkPayload>; alive: () => number } {
  const body = new PassThrough();
  let lives = 0;
  const stream = converseStreamPayloads(body, "bedrock", new AbortController().signal, jsonTool, () => lives++);
  return { body, stream, alive: () => lives };
}

const bytesOf = (frames: Frame[]): Buffer => Buffer.concat(frames.map((f) => encodeFrame(f)));

describe("event-stream reader + Converse mapper", () => {
  it("decodes messages split at every byte; partial reads count as life", async () => {
    const { body, stream, alive } = open();
    const all = bytesOf([messageStart(), ...textBlock(0, ["a", "b"]), ...toolBlock(1, "t1", "f", ['{"x"', ":1}"]), ...messageEnd("tool_use", [3, 4])]);
    const done = collect(stream);
    for (let i = 0; i < all.length; i++) {
      body.write(all.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
    }
    body.end();
    const { payloads, error } = await done;
    assert.equal(error, undefined);
    assert.deepEqual(
      payloads.map((p) => p.$case),
      ["text", "text", "toolCall", "toolCall", "toolCall", "usage", "finish"],
    );
    const calls = payloads.flatMap((p) => (p.$case === "toolCall" ? [p.value] : []));
    assert.deepEqual(calls.map((c) => c.index), [0, 0, 0], "the tool at block 1 is tool call 0");
    assert.deepEqual([calls[0]!.id, calls[0]!.name, calls.map((c) => c.arguments).join("")], ["t1", "f", '{"x":1}']);
    assert.ok(alive() > all.length / 2, "reads that complete no message are life");
  });

  it("several messages in one read", async () => {
    const { body, stream } = open();
    body.end(bytesOf([messageStart(), ...textBlock(0, ["one", "two"]), ...messageEnd("end_turn")]));
    const { payloads } = await collect(stream);
    assert.deepEqual(payloads.flatMap((p) => (p.$case === "text" ? [p.value.text] : [])), ["one", "two"]);
  });

  it("a corrupted message CRC fails the stream, never passes the bytes on", async () => {
    const { body, stream } = open();
    const good = bytesOf([messageStart(), ...textBlock(0, ["fine"])]);
    const bad = Buffer.from(encodeFrame(textBlock(0, ["evil"])[0]!));
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    body.end(Buffer.concat([good, bad]));
    const { payloads, error } = await collect(stream);
    assert.deepEqual(payloads.flatMap((p) => (p.$case === "text" ? [p.value.text] : [])), ["fine"]);
    assert.ok(error instanceof SpillwayError);
    assert.match(error.message, /checksum|crc/i);
  });

  it("a body that ends in the middle of a message is a truncation", async () => {
    const { body, stream } = open();
    const all = bytesOf([messageStart(), ...textBlock(0, ["x"])]);
    body.end(all.subarray(0, all.length - 5));
    const { error } = await collect(stream);
    assert.ok(error instanceof SpillwayError);
    assert.equal(error.reason, "upstream_truncated");
  });

  it("the JSON-output tool streams as text, and its finish is a plain stop", async () => {
    const { body, stream } = open("answer");
    body.end(bytesOf([messageStart(), ...toolBlock(0, "t", "answer", ['{"a"', ":1}"]), ...messageEnd("tool_use")]));
    const { payloads } = await collect(stream);
    assert.equal(payloads.flatMap((p) => (p.$case === "text" ? [p.value.text] : [])).join(""), '{"a":1}');
    const fin = payloads.at(-1)!;
    assert.ok(fin.$case === "finish" && fin.value.reason === 1);
  });

  it("usage: cache reads and writes count as input tokens, reads also as cached", async () => {
    const { body, stream } = open();
    const meta: Frame = { headers: { ":event-type": "metadata", ":content-type": "application/json", ":message-type": "event" }, payload: { usage: { inputTokens: 10, outputTokens: 3, totalTokens: 113, cacheReadInputTokens: 80, cacheWriteInputTokens: 20 }, metrics: { latencyMs: 1 } } };
    body.end(bytesOf([messageStart(), ...textBlock(0, ["x"]), messageEnd("end_turn")[0]!, meta]));
    const { payloads } = await collect(stream);
    const u = payloads.find((p) => p.$case === "usage");
    assert.ok(u?.$case === "usage");
    assert.deepEqual([u.value.inputTokens, u.value.outputTokens, u.value.cachedInputTokens, u.value.totalTokens], [110, 3, 80, 113]);
  });

  it("redacted reasoning arrives as opaque encrypted reasoning, at its block's index", async () => {
    const { body, stream } = open();
    const redacted: Frame = { headers: { ":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event" }, payload: { contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: "b3BhcXVl" } } } };
    body.end(bytesOf([messageStart(), redacted, ...textBlock(1, ["ok"]), ...messageEnd("end_turn")]));
    const { payloads } = await collect(stream);
    const r = payloads.find((p) => p.$case === "reasoning");
    assert.ok(r?.$case === "reasoning");
    assert.deepEqual([r.value.encrypted, r.value.text, r.value.index], ["b3BhcXVl", "", 0]);
  });

  it("stop_sequence carries the sequence Claude reports", async () => {
    const { body, stream } = open();
    body.end(bytesOf([messageStart(), ...textBlock(0, ["x"]), ...messageEnd("stop_sequence", [1, 1], { additionalModelResponseFields: { stop_sequence: "END" } })]));
    const { payloads } = await collect(stream);
    const fin = payloads.at(-1)!;
    assert.ok(fin.$case === "finish" && fin.value.stopSequence === "END");
  });
});
