/**
 * The gRPC door admits a streaming call on its request metadata, in the
 * server interceptor, before grpc-js reads or decodes its message (issue
 * 16): past capacity a request that could not even be decoded, or one over
 * the size limit, is answered `UNAVAILABLE` with the refusal's trailers; the
 * ticket taken there is the handler's (one check per call) and is released
 * exactly once however the call ends; health, reflection and ListModels are
 * never refused; `Attach` and resumable `Generate` pass the same check.
 * Saturation is made certain without timing: the process's stream cap, or
 * an adaptive limit set to no room.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { credentials, makeGenericClientConstructor, Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { AdaptiveLimit } from "../src/engine/adaptive-limit.js";
import { Admission } from "../src/engine/admission.js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine, type StreamEngine } from "../src/engine/stream-engine.js";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import { GenerateRequest } from "../src/gen/spillway/v1/request.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { generateRequest, healthCheck, readAll, reflect, spillwayClient, trailer } from "./helpers/grpc.js";
import { until } from "./helpers/saturate.js";

const GENERATE = "/spillway.v1.SpillwayService/Generate";
const MAX_MESSAGE = 64 * 1024;

/** A client for Generate that sends the request bytes as given and hands back each response message's bytes. */
type RawClient = { generate(req: Buffer, md?: Metadata): ClientReadableStream<Buffer>; close(): void };
function rawClient(address: string): RawClient {
  const id = (b: Buffer): Buffer => b;
  const Ctor = makeGenericClientConstructor(
    { generate: { path: GENERATE, requestStream: false, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
    "RawSpillway",
  );
  return new Ctor(address, credentials.createInsecure()) as unknown as RawClient;
}

/** The end of a raw call: its messages and its error (undefined when it ended OK). */
function rawResult(call: ClientReadableStream<Buffer>): Promise<{ messages: Buffer[]; error: ServiceError | undefined }> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    call.on("data", (m: Buffer) => messages.push(m));
    call.on("error", (error: ServiceError) => resolve({ messages, error }));
    call.on("end", () => resolve({ messages, error: undefined }));
  });
}

/** Bytes the generated decoder rejects: field 1 (model) claims 255 bytes and two follow. */
const UNDECODABLE = Buffer.from([0x0a, 0xff, 0x01, 0x41, 0x42]);
/** A valid request over the door's 64 KiB message limit. */
const HUGE = Buffer.from(GenerateRequest.encode(generateRequest("t/fast", "h".repeat(MAX_MESSAGE * 2))).finish());

/** Asserts a refusal for overload, with the same trailers as every gRPC refusal. */
function assertOverloaded(error: ServiceError | undefined, what: string): void {
  assert.equal(error?.code, status.UNAVAILABLE, `${what}: ${error?.code} ${error?.details}`);
  assert.equal(trailer(error, "spillway-error-code"), "server_overloaded", what);
  assert.equal(trailer(error, "spillway-retryable"), "true", what);
  assert.equal(trailer(error, "spillway-retry-after-ms"), "1000", what);
}

/** Opens the gate `t/gate` streams wait at. */
let openGate: () => void = () => undefined;
let gate = Promise.resolve();
function closeGate(): void {
  gate = new Promise<void>((resolve) => (openGate = resolve));
}

/** An engine over an in-test provider: `t/fast` streams 5 chunks, `t/hang` waits for its abort, `t/gate` for the gate after its first chunk, `t/fail` fails before its first chunk. */
function engineWith(admission: Admission): StreamEngine {
  return createStreamEngine({
    admission,
    router: createRouter([
      {
        name: "t",
        listModels: () => Promise.resolve([]),
        async *generate(model, _req, ctx): AsyncGenerator<ChunkPayload> {
          if (model === "fail") throw new Error("upstream down");
          if (model === "gate") {
            yield textPayload("first ");
            await gate;
          }
          if (model === "hang") {
            yield textPayload("first");
            await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)));
          }
          for (let i = 0; i < 5; i++) yield textPayload(`c${i} `);
          yield usagePayload({ inputTokens: 1, outputTokens: 5 });
          yield finishPayload(Finish_Reason.REASON_STOP);
        },
        async *synthesize(): AsyncGenerator<ChunkPayload> {
          throw new Error("unused");
        },
        async *transcribe(_model, _config, audio): AsyncGenerator<ChunkPayload> {
          for await (const _ of audio) yield textPayload("heard");
        },
      },
    ]),
  });
}

describe("gRPC: refused past capacity before the request message is decoded", () => {
  let door: GrpcDoor;
  let address: string;
  let admission: Admission;
  let client: SpillwayServiceClient;
  let raw: RawClient;

  before(async () => {
    // The stream cap: one stream open fills it, deterministically.
    admission = new Admission([], { maxConcurrentStreams: 1 });
    door = createGrpcDoor({ engine: engineWith(admission), maxMessageBytes: MAX_MESSAGE });
    address = `127.0.0.1:${await door.listen("127.0.0.1", 0)}`;
    client = spillwayClient(address);
    raw = rawClient(address);
  });
  after(async () => {
    client.close();
    raw.close();
    await door.shutdown(100);
  });

  it("admitted, an undecodable message is INTERNAL and an oversized one RESOURCE_EXHAUSTED (grpc-js reads them)", async () => {
    const bad = await rawResult(raw.generate(UNDECODABLE));
    assert.equal(bad.error?.code, status.INTERNAL, bad.error?.details);
    const huge = await rawResult(raw.generate(HUGE));
    assert.equal(huge.error?.code, status.RESOURCE_EXHAUSTED, huge.error?.details);
    assert.equal(admission.openStreams, 0);
  });

  it("at saturation the same requests are UNAVAILABLE with the retry trailers (never decoded), health / reflection / ListModels still answer; after it, they are served again", async () => {
    const holder = client.generate(generateRequest("t/hang", "x"));
    const held = readAll(holder);
    await new Promise((resolve) => holder.once("data", resolve));
    assert.equal(admission.openStreams, 1, "the cap is full");

    assertOverloaded((await rawResult(raw.generate(UNDECODABLE))).error, "an undecodable request");
    assertOverloaded((await rawResult(raw.generate(HUGE))).error, "a request over the size limit");
    assertOverloaded((await readAll(client.generate(generateRequest("", "x")))).error, "a request that would fail validation");
    assertOverloaded((await readAll(client.attach({ streamId: "0".repeat(32) }))).error, "Attach");
    const t = client.transcribe();
    t.end();
    assertOverloaded((await readAll(t)).error, "Transcribe (bidi)");

    // Never refused: health, reflection (a bidi method of another service) and the unary ListModels.
    assert.equal(await healthCheck(address), "SERVING");
    assert.equal(await healthCheck(address, "spillway.v1.SpillwayService"), "SERVING");
    const services = await reflect(address, { listServices: "" });
    assert.ok(JSON.stringify(services).includes("spillway.v1.SpillwayService"), JSON.stringify(services));
    const models = await new Promise<unknown>((resolve, reject) => client.listModels({}, (e, r) => (e ? reject(e) : resolve(r))));
    assert.ok(models);

    holder.cancel();
    assert.equal((await held).error?.code, status.CANCELLED);
    await until(() => Promise.resolve(admission.openStreams === 0), "the held stream's slot is released");

    const ok = await readAll(client.generate(generateRequest("t/fast", "x")));
    assert.equal(ok.error, undefined);
    assert.equal(ok.chunks.at(-1)?.payload?.$case, "finish");
    assert.equal((await rawResult(raw.generate(UNDECODABLE))).error?.code, status.INTERNAL, "decoded again once admitted");
    assert.equal(admission.openStreams, 0);
  });
});

describe("gRPC: the early ticket is the handler's, released exactly once however the call ends", () => {
  let door: GrpcDoor;
  let client: SpillwayServiceClient;
  let raw: RawClient;
  let limit: AdaptiveLimit;
  let admission: Admission;
  let entered = 0;

  before(async () => {
    limit = new AdaptiveLimit({ targetDelayMs: 1_000_000, minLimit: 1, queueMs: 0 });
    admission = new Admission([], { maxConcurrentStreams: 100, concurrency: limit });
    const enter = admission.enter.bind(admission);
    admission.enter = () => {
      entered++;
      return enter();
    };
    door = createGrpcDoor({ engine: engineWith(admission), maxMessageBytes: MAX_MESSAGE });
    const address = `127.0.0.1:${await door.listen("127.0.0.1", 0)}`;
    client = spillwayClient(address);
    raw = rawClient(address);
  });
  after(async () => {
    client.close();
    raw.close();
    await door.shutdown(100);
    limit.stop();
  });

  const settled = (what: string): Promise<void> => until(() => Promise.resolve(limit.inflight === 0 && admission.openStreams === 0), `${what}: the limit back to 0 open`);

  it("one check per call: a completed stream holds one slot while open, and frees it", async () => {
    entered = 0;
    const call = client.generate(generateRequest("t/hang", "x"));
    const done = readAll(call);
    await new Promise((resolve) => call.once("data", resolve));
    assert.equal(limit.inflight, 1, "counted once while open");
    assert.equal(admission.openStreams, 1);
    call.cancel();
    assert.equal((await done).error?.code, status.CANCELLED);
    await settled("cancelled mid-stream");
    const ok = await readAll(client.generate(generateRequest("t/fast", "x")));
    assert.equal(ok.error, undefined);
    await settled("completed");
    assert.equal(entered, 2, "Admission.enter ran once per call: the handler did not check again");
  });

  it("fails before the first chunk, fails validation, an undecodable or oversized message (no handler ran), a bidi call cancelled before any message: all back to 0", async () => {
    assert.equal((await readAll(client.generate(generateRequest("t/fail", "x")))).error?.code !== undefined, true);
    await settled("failed upstream");
    assert.equal((await readAll(client.generate(generateRequest("", "x")))).error?.code, status.INVALID_ARGUMENT);
    await settled("invalid request");
    assert.equal((await rawResult(raw.generate(UNDECODABLE))).error?.code, status.INTERNAL);
    await settled("undecodable message");
    assert.equal((await rawResult(raw.generate(HUGE))).error?.code, status.RESOURCE_EXHAUSTED);
    await settled("oversized message");
    const t = client.transcribe();
    const r = readAll(t);
    await until(() => Promise.resolve(limit.inflight === 1), "the bidi call is admitted");
    t.cancel();
    assert.equal((await r).error?.code, status.CANCELLED);
    await settled("bidi cancelled before any message");
  });

  it("with no room, calls are refused (nothing taken) and served again once there is", async () => {
    limit.limit = 0;
    try {
      assertOverloaded((await rawResult(raw.generate(UNDECODABLE))).error, "undecodable at no room");
      assertOverloaded((await readAll(client.generate(generateRequest("t/fast", "x")))).error, "valid at no room");
      assert.equal(limit.inflight, 0);
    } finally {
      limit.limit = Infinity;
    }
    assert.equal((await readAll(client.generate(generateRequest("t/fast", "x")))).error, undefined);
    await settled("after the refusals");
    // Many at once, some cancelled early: still back to 0.
    const calls = Array.from({ length: 20 }, (_, i) => {
      const c = client.generate(generateRequest(i % 2 ? "t/hang" : "t/fast", "x"));
      const r = readAll(c);
      if (i % 2) c.once("data", () => c.cancel());
      return r;
    });
    await Promise.all(calls);
    await settled("20 calls, half cancelled");
    await sleep(50);
    assert.equal(limit.inflight, 0, "never below 0 either: each slot was released once");
  });
});

describe("gRPC Attach and resumable Generate at saturation", () => {
  let door: GrpcDoor;
  let client: SpillwayServiceClient;
  let admission: Admission;

  before(async () => {
    admission = new Admission([], { maxConcurrentStreams: 1 });
    door = createGrpcDoor({ engine: engineWith(admission) });
    client = spillwayClient(`127.0.0.1:${await door.listen("127.0.0.1", 0)}`);
  });
  after(async () => {
    client.close();
    await door.shutdown(100);
  });

  it("a resumable Generate's detached stream holds the one slot (taken over from the call's ticket); Attach to it is refused until the slot is free, then replays it", async () => {
    closeGate();
    const md = new Metadata();
    md.set("x-spillway-resumable", "true");
    const gen = client.generate(generateRequest("t/gate", "x"), md);
    const first = await new Promise<{ streamId: string }>((resolve) => gen.once("data", resolve));
    assert.equal(admission.openStreams, 1, "the detached generation holds the slot");
    gen.cancel();
    await readAll(gen);
    assert.equal(admission.openStreams, 1, "it runs on without the call");

    // At saturation a reattach is refused like any new stream.
    assertOverloaded((await readAll(client.attach({ streamId: first.streamId }))).error, "Attach at saturation");
    const md2 = new Metadata();
    md2.set("x-spillway-resumable", "true");
    assertOverloaded((await readAll(client.generate(generateRequest("t/fast", "x"), md2))).error, "resumable Generate at saturation");

    // The generation ends: the slot is free, and Attach replays the stored stream whole.
    openGate();
    await until(() => Promise.resolve(admission.openStreams === 0), "the detached generation ends");
    const replay = await readAll(client.attach({ streamId: first.streamId }));
    assert.equal(replay.error, undefined, replay.error?.details);
    const text = replay.chunks.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join("");
    assert.equal(text, "first c0 c1 c2 c3 c4 ");
    assert.equal(replay.chunks.at(-1)?.payload?.$case, "finish");
    assert.equal(admission.openStreams, 0);
  });
});
