/**
 * The gRPC door's write path (issue 16): the chunk serializer
 * gives the generated encoder's bytes for every payload, the coalescing
 * interceptor acknowledges writes early only up to its limit, and a burst
 * of chunks produced in one turn reaches a real client whole, in order, one
 * message per chunk, with a slow reader still holding the producer back.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerInterceptingCallInterface } from "@grpc/grpc-js";
import { AudioEncoding, Chunk, Finish_Reason, SpeechEvent_Type, TranscriptDelta_Kind } from "../src/gen/spillway/v1/chunk.js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { serializeChunk, spillwayServiceDefinition } from "../src/doors/grpc/chunk-serializer.js";
import { CoalescingCall, directSink, MAX_DIRECT_IN_FLIGHT, MAX_MESSAGES_IN_FLIGHT } from "../src/doors/grpc/write-coalescing.js";
import { Metadata } from "@grpc/grpc-js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

const chunk = (payload: Chunk["payload"], seq = 7, streamId = "str_abc"): Chunk => ({ streamId, seq, payload });

const samples: Chunk[] = [
  chunk({ $case: "text", value: { text: "héllo ✓ world" } }),
  chunk({ $case: "text", value: { text: "" } }, 0, ""),
  chunk({ $case: "text", value: { text: "" } }, 1),
  chunk({ $case: "text", value: { text: "x" } }, 0, ""),
  chunk({ $case: "text", value: { text: "emoji 😀, lone \ud800 surrogate, ".repeat(20) } }, 2 ** 31 + 5, "str_é"),
  chunk({ $case: "text", value: { text: "y".repeat(200_000) } }, Number.MAX_SAFE_INTEGER, "s".repeat(300)),
  chunk({ $case: "text", value: { text: "z".repeat(127) } }, 127, "i".repeat(127)),
  chunk({ $case: "text", value: { text: "z".repeat(128) } }, 128, "i".repeat(128)),
  chunk({ $case: "toolCall", value: { index: 2, id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' } }),
  chunk({ $case: "audio", value: { data: Buffer.alloc(100_000, 7), encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: 24_000, channels: 1 } }),
  chunk({ $case: "transcript", value: { text: "hi", kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: 0.5, endSeconds: 1.25 } }),
  chunk({ $case: "speech", value: { type: SpeechEvent_Type.TYPE_SPEECH_STARTED, audioMs: 320 } }),
  chunk({ $case: "usage", value: { inputTokens: 5, outputTokens: 200, totalTokens: 205, cachedInputTokens: 1, reasoningTokens: 3, inputAudioSeconds: 0, outputAudioSeconds: 2.5 } }),
  chunk({ $case: "finish", value: { reason: Finish_Reason.REASON_LENGTH, stopSequence: "END" } }),
  chunk({ $case: "error", value: { type: "server_error", code: "upstream", message: "gone", param: "", grpcCode: 14, retryable: true } }),
  chunk({ $case: "reasoning", value: { text: "think", signature: "sig", encrypted: "", summary: true, index: 1, id: "rs_1" } }),
  chunk(undefined, 2 ** 40),
];

describe("gRPC chunk serializer", () => {
  it("writes the generated encoder's bytes for every payload, in any order, after big and failed messages", () => {
    for (const c of [...samples, ...samples.slice().reverse()]) {
      assert.deepEqual(serializeChunk(c), Buffer.from(Chunk.encode(c).finish()), `payload ${c.payload?.$case}`);
      assert.deepEqual(Chunk.decode(serializeChunk(c)), Chunk.decode(Chunk.encode(c).finish()));
    }
    // seq is written after stream_id: a throw mid-message must not leave stream_id in the next one.
    assert.throws(() => serializeChunk(chunk({ $case: "text", value: { text: "x" } }, -1)), /uint64/);
    assert.deepEqual(serializeChunk(samples[0]!), Buffer.from(Chunk.encode(samples[0]!).finish()));
  });

  it("each message owns its bytes: a later message does not change an earlier one", () => {
    const a = serializeChunk(samples[0]!);
    const copy = Buffer.from(a);
    serializeChunk(samples[2]!);
    assert.deepEqual(a, copy);
  });

  it("is the response serializer of every chunk-streaming method, and only of those", () => {
    for (const m of ["generate", "synthesize", "transcribe", "attach"] as const) assert.equal(spillwayServiceDefinition[m].responseSerialize, serializeChunk);
    assert.notEqual(spillwayServiceDefinition.listModels.responseSerialize, serializeChunk);
  });
});

/** A stand-in for grpc-js's call below the interceptor: records messages, completes writes when told. */
function fakeNext(): { call: ServerInterceptingCallInterface; sent: unknown[]; complete(): void; statuses: unknown[]; listener: () => { onReceiveMetadata(m: Metadata): void } } {
  const sent: unknown[] = [];
  const pending: Array<() => void> = [];
  const statuses: unknown[] = [];
  let listener: { onReceiveMetadata(m: Metadata): void } | undefined;
  const call = {
    start: (l: { onReceiveMetadata(m: Metadata): void }) => void (listener = l),
    sendMetadata: () => undefined,
    sendMessage: (m: unknown, cb: () => void) => {
      sent.push(m);
      pending.push(cb);
    },
    sendStatus: (s: unknown) => void statuses.push(s),
    startRead: () => undefined,
  } as unknown as ServerInterceptingCallInterface;
  return { call, sent, statuses, complete: () => pending.shift()?.(), listener: () => listener! };
}

describe("gRPC write coalescing", () => {
  it("acknowledges at once below the limit, holds the acknowledgement at it, and releases it as writes complete", () => {
    const next = fakeNext();
    const call = new CoalescingCall(next.call);
    let acked = 0;
    for (let i = 0; i < MAX_MESSAGES_IN_FLIGHT - 1; i++) call.sendMessage(i, () => acked++);
    assert.equal(acked, MAX_MESSAGES_IN_FLIGHT - 1, "below the limit each write is acknowledged when handed on");
    call.sendMessage("at-limit", () => acked++);
    assert.equal(acked, MAX_MESSAGES_IN_FLIGHT - 1, "at the limit the acknowledgement waits");
    assert.equal(next.sent.length, MAX_MESSAGES_IN_FLIGHT, "the message itself is handed on");
    next.complete();
    assert.equal(acked, MAX_MESSAGES_IN_FLIGHT, "a completed write releases it");
    next.complete();
    assert.equal(acked, MAX_MESSAGES_IN_FLIGHT, "nothing else was waiting");
    call.sendStatus({ code: 0, details: "OK" });
    assert.deepEqual(next.statuses, [{ code: 0, details: "OK" }]);
    assert.deepEqual(next.sent.slice(0, 3), [0, 1, 2], "order kept");
  });

  it("the handler's call finds the coalescing call by its metadata, and writes through it with drain at the direct limit", () => {
    const next = fakeNext();
    const call = new CoalescingCall(next.call);
    const seen: Metadata[] = [];
    call.start({ onReceiveMetadata: (m) => seen.push(m), onReceiveMessage: () => undefined, onReceiveHalfClose: () => undefined, onCancel: () => undefined });
    const md = new Metadata();
    assert.equal(directSink(md), undefined);
    next.listener().onReceiveMetadata(md);
    assert.equal(seen[0], md, "the metadata reaches the handler unchanged");
    const sink = directSink(md);
    assert.equal(sink, call);
    const results: boolean[] = [];
    for (let i = 0; i < MAX_DIRECT_IN_FLIGHT; i++) results.push(sink.write({ seq: i }));
    assert.deepEqual(results.slice(-2), [true, false], "false once the direct limit is reached");
    assert.equal(next.sent.length, MAX_DIRECT_IN_FLIGHT, "every message handed on, in order");
    assert.deepEqual(next.sent.slice(0, 2), [{ seq: 0 }, { seq: 1 }]);
    let drained = 0;
    const onDrain = (): void => void drained++;
    sink.once("drain", onDrain);
    next.complete();
    assert.equal(drained, 1, "drain once below the limit");
    next.complete();
    assert.equal(drained, 1, "once");
    sink.once("drain", onDrain);
    sink.removeListener("drain", onDrain);
    sink.write({ seq: 99 });
    sink.write({ seq: 100 });
    next.complete();
    assert.equal(drained, 1, "a removed listener is not called");
  });

  it("a message grpc-js drops (cancelled call) is never acknowledged past the limit", () => {
    const next = fakeNext();
    const call = new CoalescingCall(next.call);
    let acked = 0;
    for (let i = 0; i < MAX_MESSAGES_IN_FLIGHT + 1; i++) call.sendMessage(i, () => acked++);
    assert.equal(acked, MAX_MESSAGES_IN_FLIGHT - 1);
  });
});

describe("gRPC door: a burst of chunks in one turn", () => {
  let door: GrpcDoor;
  let client: SpillwayServiceClient;
  const N = 3_000;
  let produced = 0;

  before(async () => {
    const engine = createStreamEngine({
      router: createRouter([
        {
          name: "t",
          listModels: () => Promise.resolve([]),
          async *generate(model): AsyncGenerator<ChunkPayload> {
            produced = 0;
            const n = model === "endless" ? 1_000_000 : N;
            for (let i = 0; i < n; i++) {
              produced++;
              yield textPayload(`c${i},`);
            }
            yield usagePayload({ inputTokens: 1, outputTokens: n });
            yield finishPayload(Finish_Reason.REASON_STOP);
          },
          async *synthesize(): AsyncGenerator<ChunkPayload> {
            throw new Error("unused");
          },
          async *transcribe(): AsyncGenerator<ChunkPayload> {
            throw new Error("unused");
          },
        },
      ]),
    });
    door = createGrpcDoor({ engine });
    client = spillwayClient(`127.0.0.1:${await door.listen("127.0.0.1", 0)}`);
  });
  after(async () => {
    client.close();
    await door.shutdown(100);
  });

  it("every chunk arrives as its own message, in order, then usage and finish, status OK", async () => {
    const { chunks, error } = await readAll(client.generate(generateRequest("t/burst", "x")));
    assert.equal(error, undefined);
    const texts = chunks.filter((c) => c.payload?.$case === "text").map((c) => (c.payload?.$case === "text" ? c.payload.value.text : ""));
    assert.equal(texts.length, N);
    assert.deepEqual(texts.slice(0, 3), ["c0,", "c1,", "c2,"]);
    assert.equal(texts.join(""), Array.from({ length: N }, (_, i) => `c${i},`).join(""));
    assert.deepEqual(chunks.slice(-2).map((c) => c.payload?.$case), ["usage", "finish"]);
    assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => chunks[0]!.seq + i), "seq is monotonic without gaps");
  });

  it("a reader that stops still stops the producer (bounded ahead)", async () => {
    const call = client.generate(generateRequest("t/endless", "x"));
    let delivered = 0;
    call.on("data", () => {
      if (++delivered === 10) call.pause();
    });
    call.on("error", () => undefined);
    let last = -1;
    while (produced !== last) {
      last = produced;
      await sleep(300);
    }
    assert.ok(produced < 100_000, `the provider ran ${produced} chunks ahead of a paused reader`);
    call.cancel();
  });
});
