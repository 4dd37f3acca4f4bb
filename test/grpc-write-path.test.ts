/**
 * The gRPC door's write path (issue 16): the chunk serializer
 * gives the generated encoder's bytes for every payload, the coalescing
 * interceptor acknowledges writes early only up to its limit, and a burst
 * of chunks produced in one turn reaches a real client whole, in order, one
 * message per chunk, with a slow reader still holding the producer back.
 * Batches framed by the door (one HTTP/2 write of length-prefixed
 * messages) carry the same messages as grpc-js's own per-message path.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerInterceptingCallInterface } from "@grpc/grpc-js";
import { AudioEncoding, Chunk, Finish_Reason, SpeechEvent_Type, TranscriptDelta_Kind } from "../src/gen/spillway/v1/chunk.js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { frameChunks, serializeChunk, spillwayServiceDefinition } from "../src/doors/grpc/chunk-serializer.js";
import { CoalescingCall, directSink, framingTarget, MAX_DIRECT_IN_FLIGHT, MAX_FRAMED_BYTES, MAX_FRAMED_IN_FLIGHT, MAX_MESSAGES_IN_FLIGHT } from "../src/doors/grpc/write-coalescing.js";
import { credentials, makeGenericClientConstructor, Metadata, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { ListIterator } from "../src/engine/poll.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { GenerateRequest } from "../src/gen/spillway/v1/request.js";
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
          generate(model) {
            produced = 0;
            if (model === "ready") return readyForever();
            return burst(model);
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
    /** Chunks that are always ready (`tryNext`), without end: only backpressure stops them. */
    function readyForever(): AsyncIterableIterator<ChunkPayload> & { tryNext(): IteratorResult<ChunkPayload> } {
      const it = {
        [Symbol.asyncIterator]: () => it,
        tryNext: (): IteratorResult<ChunkPayload> => ({ done: false, value: textPayload(`r${produced++}`.padEnd(1024, ".")) }),
        next: () => Promise.resolve(it.tryNext()),
        return: () => Promise.resolve({ done: true as const, value: undefined }),
      };
      return it;
    }
    async function* burst(model: string): AsyncGenerator<ChunkPayload> {
            const n = model === "endless" ? 1_000_000 : N;
            for (let i = 0; i < n; i++) {
              produced++;
              yield textPayload(`c${i},`);
            }
            yield usagePayload({ inputTokens: 1, outputTokens: n });
            yield finishPayload(Finish_Reason.REASON_STOP);
    }
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

  it("with every chunk ready at once (framed batches), a paused reader still stops the producer, and cancelling ends it", async () => {
    const call = client.generate(generateRequest("t/ready", "x"));
    let delivered = 0;
    call.on("data", () => {
      if (++delivered === 10) call.pause();
    });
    const errored = new Promise<ServiceError>((resolve) => call.on("error", resolve));
    let last = -1;
    while (produced !== last) {
      last = produced;
      await sleep(300);
    }
    // 1 KiB chunks: what HTTP/2 windows hold plus the door's 64 KiB in flight is a few hundred.
    assert.ok(produced < 5_000, `the provider ran ${produced} chunks (KiB) ahead of a paused reader`);
    call.cancel();
    assert.equal((await errored).code, 1);
    const at = produced;
    await sleep(200);
    assert.equal(produced, at, "nothing is pulled after the cancel");
  });
});

/** grpc-js's own framing of one message (`serializeMessage`): flag 0, length (uint32 BE), then the bytes. */
function grpcFrame(c: Chunk): Buffer {
  const body = serializeChunk(c);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** A stand-in shaped like grpc-js 1.14's base server call (the private parts framing uses), recording HTTP/2 writes. */
function fakeBase(): { call: ServerInterceptingCallInterface; writes: Buffer[]; sent: unknown[]; complete(): void; statuses: unknown[]; headersSent: () => number } {
  const writes: Buffer[] = [];
  const sent: unknown[] = [];
  const pending: Array<(err?: Error | null) => void> = [];
  const statuses: unknown[] = [];
  let headers = 0;
  const call = {
    stream: { write: (b: Buffer, cb: (err?: Error | null) => void) => (writes.push(b), pending.push(cb), true) },
    handler: { serialize: serializeChunk },
    maxSendMessageSize: -1,
    callEventTracker: null,
    checkCancelled: () => false,
    maybeSendMetadata: () => void headers++,
    start: () => undefined,
    sendMetadata: () => undefined,
    sendMessage: (m: unknown, cb: () => void) => (sent.push(m), pending.push(cb)),
    sendStatus: (st: unknown) => void statuses.push(st),
    startRead: () => undefined,
  } as unknown as ServerInterceptingCallInterface;
  return { call, writes, sent, statuses, complete: () => pending.shift()?.(), headersSent: () => headers };
}

describe("gRPC framed batches", () => {
  it("frameChunks is grpc-js's framing of each message, back to back, for every payload", () => {
    const framed = frameChunks(samples);
    assert.deepEqual(framed.bytes, Buffer.concat(samples.map(grpcFrame)));
    assert.equal(framed.largest, Math.max(...samples.map((c) => serializeChunk(c).length)));
    for (const c of samples) assert.deepEqual(frameChunks([c]).bytes, grpcFrame(c), `payload ${c.payload?.$case}`);
    assert.throws(() => frameChunks([samples[0]!, chunk({ $case: "text", value: { text: "x" } }, -1)]), /uint64/);
    assert.deepEqual(frameChunks([samples[9]!, samples[0]!]).bytes, Buffer.concat([grpcFrame(samples[9]!), grpcFrame(samples[0]!)]), "a failed batch leaves nothing behind");
  });

  it("is used only on grpc-js's base call with the chunk serializer; elsewhere each message goes through sendMessage", () => {
    assert.ok(framingTarget(fakeBase().call));
    assert.equal(framingTarget(fakeNext().call), undefined, "another shape: the public path");
    const other = fakeBase();
    (other.call as unknown as { handler: { serialize: unknown } }).handler.serialize = (v: unknown) => Buffer.from(String(v));
    assert.equal(framingTarget(other.call), undefined, "another serializer: the public path");
    const plain = fakeNext();
    const call = new CoalescingCall(plain.call);
    assert.equal(call.framing, false);
    call.writeMany(samples.slice(0, 3));
    assert.deepEqual(plain.sent, samples.slice(0, 3), "one sendMessage per chunk, in order");
    assert.equal(new CoalescingCall(fakeBase().call, { frame: false }).framing, false, "off when asked");
  });

  it("one HTTP/2 write per batch, headers first; bounded by messages and by bytes, drain as writes complete", () => {
    const base = fakeBase();
    const call = new CoalescingCall(base.call);
    assert.equal(call.framing, true);
    const small = Array.from({ length: MAX_FRAMED_IN_FLIGHT - 1 }, (_, i) => chunk({ $case: "text", value: { text: `t${i}` } }, i + 1));
    assert.equal(call.writeMany(small), true, "under both bounds");
    assert.equal(base.writes.length, 1, "one write for the batch");
    assert.equal(base.headersSent(), 1, "response headers before the data");
    assert.deepEqual(base.writes[0], Buffer.concat(small.map(grpcFrame)));
    assert.equal(call.writeMany([small[0]!]), false, "the message bound");
    let drained = 0;
    call.once("drain", () => void drained++);
    base.complete();
    assert.equal(drained, 1, "drain once the batch is written");
    base.complete();
    const big = Array.from({ length: 3 }, () => chunk({ $case: "text", value: { text: "b".repeat(MAX_FRAMED_BYTES / 2) } }));
    assert.equal(call.writeMany(big.slice(0, 1)), true);
    assert.equal(call.writeMany(big.slice(1)), false, "the byte bound");
    call.once("drain", () => void drained++);
    base.complete();
    assert.equal(drained, 1, "still over the byte bound");
    base.complete();
    assert.equal(drained, 2);
    assert.equal(base.sent.length, 0, "nothing went the public way");
  });

  it("a batch with a chunk that cannot be serialized goes the public way, after what was written, so grpc-js ends the call as before", () => {
    const base = fakeBase();
    const call = new CoalescingCall(base.call);
    call.writeMany([samples[0]!]);
    const bad = chunk({ $case: "text", value: { text: "x" } }, -1);
    call.writeMany([samples[1]!, bad]);
    assert.equal(base.writes.length, 1);
    assert.deepEqual(base.sent, [samples[1]!, bad], "in order, through sendMessage (which fails the call INTERNAL)");
  });
});

describe("gRPC door: framed and public paths send the same messages", () => {
  const doors: GrpcDoor[] = [];
  const addresses: string[] = [];
  const payloads: ChunkPayload[] = [
    ...Array.from({ length: 300 }, (_, i) => textPayload(i % 7 ? `t${i} ` : `ünïcode ✓ 😀 ${i} `)),
    { $case: "toolCall", value: { index: 0, id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' } },
    { $case: "reasoning", value: { text: "think", signature: "sig", encrypted: "", summary: false, index: 0, id: "rs_1" } },
    textPayload(""),
    textPayload("y".repeat(70_000)),
    ...Array.from({ length: 50 }, (_, i) => textPayload(`end${i}`)),
  ];
  const used: boolean[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back after, and called with .call(this)
  const original = CoalescingCall.prototype.writeMany;

  before(async () => {
    CoalescingCall.prototype.writeMany = function (this: CoalescingCall, chunks) {
      used.push(this.framing);
      return original.call(this, chunks);
    };
    const engine = createStreamEngine({
      router: createRouter([
        {
          name: "t",
          listModels: () => Promise.resolve([]),
          // Every payload ready at once (as from one upstream read): the door takes them with tryNext.
          generate: () => new ListIterator([...payloads, usagePayload({ inputTokens: 1, outputTokens: payloads.length }), finishPayload(Finish_Reason.REASON_STOP)]),
          async *synthesize(): AsyncGenerator<ChunkPayload> {
            throw new Error("unused");
          },
          async *transcribe(): AsyncGenerator<ChunkPayload> {
            throw new Error("unused");
          },
        },
      ]),
    });
    for (const frameBursts of [true, false]) {
      const door = createGrpcDoor({ engine, frameBursts });
      doors.push(door);
      addresses.push(`127.0.0.1:${await door.listen("127.0.0.1", 0)}`);
    }
  });
  after(async () => {
    CoalescingCall.prototype.writeMany = original;
    for (const d of doors) await d.shutdown(100);
  });

  /** Each response message's bytes, with the call's stream id masked (it differs per call). */
  async function rawMessages(address: string): Promise<Buffer[]> {
    const id = (b: Buffer): Buffer => b;
    const Ctor = makeGenericClientConstructor(
      { generate: { path: "/spillway.v1.SpillwayService/Generate", requestStream: false, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
      "Raw",
    );
    const client = new Ctor(address, credentials.createInsecure()) as unknown as { generate(b: Buffer): ClientReadableStream<Buffer>; close(): void };
    try {
      const messages = await new Promise<Buffer[]>((resolve, reject) => {
        const got: Buffer[] = [];
        const call = client.generate(Buffer.from(GenerateRequest.encode(generateRequest("t/mixed", "x")).finish()));
        call.on("data", (m: Buffer) => got.push(m));
        call.on("error", (e: ServiceError) => reject(e));
        call.on("end", () => resolve(got));
      });
      const streamId = Chunk.decode(messages[0]!).streamId;
      assert.ok(streamId.length > 0);
      return messages.map((m) => Buffer.from(m.toString("latin1").replaceAll(streamId, "#".repeat(streamId.length)), "latin1"));
    } finally {
      client.close();
    }
  }

  it("byte for byte, message by message, in order, with the framed path used on one door and not on the other", async () => {
    used.length = 0;
    const framed = await rawMessages(addresses[0]!);
    assert.ok(used.length > 0 && used.every((u) => u), "the framing door framed");
    assert.ok(used.length < payloads.length, `chunks went in batches (${used.length} batches for ${payloads.length + 2} chunks)`);
    used.length = 0;
    const plain = await rawMessages(addresses[1]!);
    assert.ok(used.length > 0 && used.every((u) => !u), "the other door used grpc-js's sendMessage");
    assert.equal(framed.length, payloads.length + 2);
    assert.deepEqual(framed, plain);
    const last = framed.slice(-2).map((m) => Chunk.decode(m).payload?.$case);
    assert.deepEqual(last, ["usage", "finish"]);
  });
});
