/**
 * The gRPC door over an engine with an instrumented in-test provider:
 * backpressure with a slow reader, the client's deadline and cancel reaching
 * the provider, and shutdown.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { AudioEncoding, TranscriptDelta_Kind, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { TranscribeRequest } from "../src/gen/spillway/v1/request.js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { textPayload, type ChunkPayload } from "../src/engine/payload.js";
import type { ProviderContext } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine, type StreamEngine } from "../src/engine/stream-engine.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import {
  generateRequest,
  healthCheck,
  readAll,
  spillwayClient,
  synthesizeRequest,
  transcribeConfig,
} from "./helpers/grpc.js";

const transcript = (text: string, kind: TranscriptDelta_Kind): ChunkPayload => ({
  $case: "transcript",
  value: { text, kind, startSeconds: 0, endSeconds: 0 },
});

/** The next chunk the call delivers. */
const nextChunk = (call: ClientDuplexStream<TranscribeRequest, Chunk>): Promise<Chunk> =>
  new Promise((resolve) => call.once("data", resolve));

const audioMsg = (n: number): TranscribeRequest => ({ input: { $case: "audio", value: Buffer.alloc(n, 1) } });

/** What the provider saw of its last call. */
interface Seen {
  produced: number;
  ctx: ProviderContext | undefined;
  aborted: Promise<unknown>;
}

/** Waits until the provider has been called afresh (after `seen.ctx` was cleared) and has yielded `produced` chunks. */
async function providerCall(seen: Seen, produced = 0): Promise<ProviderContext> {
  for (;;) {
    const ctx = seen.ctx;
    if (ctx && seen.produced >= produced) return ctx;
    await sleep(10);
  }
}

/** Resolves once `read()` has stopped changing for `quietPolls` polls in a row (or after `maxMs`). */
async function settle(read: () => number, quietPolls = 6, maxMs = 10_000): Promise<number> {
  let last = read();
  let quiet = 0;
  for (const start = Date.now(); quiet < quietPolls && Date.now() - start < maxMs; ) {
    await sleep(50);
    const now = read();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
  return last;
}

describe("gRPC door with an instrumented provider", () => {
  let door: GrpcDoor;
  let client: SpillwayServiceClient;
  const seen: Seen = { produced: 0, ctx: undefined, aborted: Promise.resolve() };
  const CHUNK = "x".repeat(1024);
  const TOTAL = 100_000; // 100 MB if nothing held the producer back

  let engine: StreamEngine;

  before(async () => {
    engine = createStreamEngine({
      router: createRouter([
        {
          name: "t",
          listModels: () => Promise.resolve([]),
          async *generate(model, _req, ctx): AsyncGenerator<ChunkPayload> {
            seen.produced = 0;
            seen.ctx = ctx;
            seen.aborted = new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason)));
            if (model === "hang") await new Promise((_, reject) => ctx.signal.addEventListener("abort", reject));
            for (let i = 0; i < (model === "stall" ? 1 : TOTAL); i++) {
              seen.produced++;
              yield textPayload(CHUNK);
            }
            if (model === "stall") await new Promise((_, reject) => ctx.signal.addEventListener("abort", reject));
          },
          async *synthesize(_model, req): AsyncGenerator<ChunkPayload> {
            for (let i = req.input.split(" ").length; i > 0; i--) {
              yield { $case: "audio", value: { data: Buffer.alloc(320), encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: 16_000, channels: 1 } };
            }
          },
          async *transcribe(_model, config, audio): AsyncGenerator<ChunkPayload> {
            let bytes = 0;
            for await (const b of audio) {
              bytes += b.length;
              yield transcript(`got ${b.length}`, TranscriptDelta_Kind.KIND_DELTA);
            }
            yield transcript(`total ${bytes} at ${config.sampleRate}`, TranscriptDelta_Kind.KIND_FINAL);
          },
        },
      ]),
    });
    door = createGrpcDoor({ engine, maxMessageBytes: 64 * 1024 });
    client = spillwayClient(`127.0.0.1:${await door.listen("127.0.0.1", 0)}`);
  });
  after(async () => {
    client.close();
    await door.shutdown(100);
  });

  it("a slow reader pauses the producer: what is buffered stays bounded, and the stream resumes", async () => {
    const call = client.generate(generateRequest("t/fast", "x"));
    const errored = new Promise<ServiceError>((resolve) => call.on("error", resolve));
    let delivered = 0;
    call.on("data", () => {
      if (++delivered === 20) call.pause();
    });
    const producedWhilePaused = await settle(() => seen.produced);
    assert.equal(delivered, 20);
    const buffered = producedWhilePaused - delivered;
    assert.ok(
      buffered < 1_000,
      `the provider ran ${buffered} chunks (${buffered} KiB) ahead of a paused reader: the door must stop pulling`,
    );
    call.resume();
    const more = producedWhilePaused + 2_000;
    while (seen.produced < more) await sleep(20);
    assert.ok(delivered > producedWhilePaused, "reading again lets the producer go on");
    call.cancel();
    assert.equal((await errored).code, status.CANCELLED);
    const reason = await seen.aborted;
    assert.ok(reason instanceof SpillwayError && reason.code === Code.Canceled, `abort reason: ${String(reason)}`);
    assert.ok(seen.produced < TOTAL);
  });

  it("a call cancelled while the door waits for drain stops waiting: the call ends and is no longer active", async () => {
    seen.ctx = undefined;
    const call = client.generate(generateRequest("t/fast", "x"));
    const errored = new Promise<ServiceError>((resolve) => call.on("error", resolve));
    call.once("data", () => call.pause());
    // Paused: HTTP/2 flow control shuts, the door's writes stop completing and its pipe waits for `drain`.
    await providerCall(seen, 1);
    await settle(() => seen.produced);
    assert.equal(door.activeCalls, 1);
    call.cancel();
    assert.equal((await errored).code, status.CANCELLED);
    // The wait ends (the abort wakes it, or the reset stream completes the writes): the handler finishes.
    const active = (): number => door.activeCalls;
    while (active() !== 0) await sleep(10);
    assert.ok(seen.produced < TOTAL);
  });

  it("the client's deadline becomes the provider's deadline, and its expiry aborts the provider", async () => {
    seen.ctx = undefined;
    const deadline = Date.now() + 500;
    const result = readAll(client.generate(generateRequest("t/stall", "x"), { deadline }));
    const ctx = await providerCall(seen, 1);
    assert.ok(Math.abs(ctx.deadline - deadline) < 250, `provider deadline ${ctx.deadline - deadline} ms off the client's`);
    const { chunks, error } = await result;
    assert.equal(chunks.length >= 1, true);
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    const reason = await seen.aborted;
    assert.ok(reason instanceof SpillwayError && reason.code === Code.DeadlineExceeded, `abort reason: ${String(reason)}`);
  });

  it("a call with no deadline gets the engine's own limit", async () => {
    seen.ctx = undefined;
    const call = client.generate(generateRequest("t/stall", "x"));
    const result = readAll(call);
    const ctx = await providerCall(seen, 1);
    assert.ok(ctx.deadline > Date.now() + 60_000, "maxStreamMs (default 10 min) applies");
    call.cancel();
    assert.equal((await result).error?.code, status.CANCELLED);
  });

  it("shutdown ends calls still in flight after the grace, aborting the provider", async () => {
    const door2 = createGrpcDoor({ engine });
    const address = `127.0.0.1:${await door2.listen("127.0.0.1", 0)}`;
    const client2 = spillwayClient(address);
    try {
      assert.equal(await healthCheck(address), "SERVING");
      seen.ctx = undefined;
      const pending = readAll(client2.generate(generateRequest("t/hang", "x")));
      await providerCall(seen);
      await door2.shutdown(200);
      const { error } = await pending;
      // Ended by the shutdown, not by the engine's 30 s first-chunk timeout (DEADLINE_EXCEEDED), which is what ended it
      // while grpc-js's forceShutdown (channelz off) left the call open.
      assert.ok(error?.code === status.UNAVAILABLE || error?.code === status.CANCELLED, `the hanging call ended with ${error?.code} ${error?.details}`);
      const reason = await seen.aborted;
      assert.ok(reason instanceof SpillwayError && reason.code === Code.Unavailable, `abort reason: ${String(reason)}`);
    } finally {
      client2.close();
    }
  });

  it("Synthesize streams audio chunks, usage then finish last; empty input is INVALID_ARGUMENT naming input", async () => {
    const { chunks, error } = await readAll(client.synthesize(synthesizeRequest("t/voice", "one two three")));
    assert.equal(error, undefined);
    assert.deepEqual(
      chunks.map((c) => c.payload?.$case),
      ["audio", "audio", "audio", "usage", "finish"],
    );
    const bad = await readAll(client.synthesize(synthesizeRequest("t/voice", "")));
    assert.equal(bad.error?.code, status.INVALID_ARGUMENT);
    assert.match(bad.error.details, /input/);
  });

  it("Transcribe is bidi: deltas arrive while the client is still sending, the rest after it half-closes", async () => {
    const call = client.transcribe();
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      call.on("error", resolve);
      call.on("end", () => resolve(undefined));
    });
    call.write({ input: { $case: "config", value: transcribeConfig("t/ear", 16_000) } });
    call.write(audioMsg(100));
    const first = await nextChunk(call);
    assert.deepEqual(first.payload, { $case: "transcript", value: { text: "got 100", kind: TranscriptDelta_Kind.KIND_DELTA, startSeconds: 0, endSeconds: 0 } });
    call.write(audioMsg(50));
    const second = await nextChunk(call);
    assert.ok(second.payload?.$case === "transcript" && second.payload.value.text === "got 50");
    const rest: Chunk[] = [];
    call.on("data", (c: Chunk) => rest.push(c));
    call.end();
    assert.equal(await ended, undefined);
    assert.deepEqual(
      rest.map((c) => c.payload?.$case),
      ["transcript", "usage", "finish"],
    );
    assert.ok(rest[0]!.payload?.$case === "transcript" && rest[0]!.payload.value.text === "total 150 at 16000");
    assert.deepEqual(
      [first, second, ...rest].map((c) => c.seq),
      [0, 1, 2, 3, 4],
    );
  });

  it("Transcribe: audio before config, or no config at all, is INVALID_ARGUMENT naming config", async () => {
    const early = client.transcribe();
    const r1 = readAll(early);
    early.write(audioMsg(10));
    const e1 = (await r1).error;
    early.end();
    assert.equal(e1?.code, status.INVALID_ARGUMENT);
    assert.match(e1.details, /audio arrived before config/);
    const empty = client.transcribe();
    const r2 = readAll(empty);
    empty.end();
    const e2 = (await r2).error;
    assert.equal(e2?.code, status.INVALID_ARGUMENT);
    assert.match(e2.details, /config/);
  });

  it("Transcribe: a second config after results flow ends with an in-band error naming config", async () => {
    const call = client.transcribe();
    const result = readAll(call);
    call.write({ input: { $case: "config", value: transcribeConfig("t/ear", 16_000) } });
    call.write(audioMsg(10));
    call.write({ input: { $case: "config", value: transcribeConfig("t/ear", 16_000) } });
    call.end();
    const { chunks, error } = await result;
    assert.equal(error, undefined);
    const last = chunks.at(-1)!.payload;
    assert.ok(last?.$case === "error", `last chunk: ${last?.$case}`);
    assert.equal(last.value.param, "config");
  });

  it("Transcribe: an audio message over maxMessageBytes is RESOURCE_EXHAUSTED", async () => {
    const call = client.transcribe();
    const result = readAll(call);
    call.write({ input: { $case: "config", value: transcribeConfig("t/ear", 16_000) } });
    call.write(audioMsg(100 * 1024));
    call.end();
    const { error } = await result;
    assert.equal(error?.code, status.RESOURCE_EXHAUSTED, error?.details);
    assert.match(error.details, /larger than/);
  });
});
