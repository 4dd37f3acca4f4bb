/**
 * The gRPC door's write path (issue 16): the reused-writer chunk serializer
 * gives the generated encoder's bytes for every payload, the coalescing
 * interceptor acknowledges writes early only up to its limit, and a burst
 * of chunks produced in one turn reaches a real client whole, in order, one
 * message per chunk, with a slow reader still holding the producer back.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ServerInterceptingCallInterface } from "@grpc/grpc-js";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { CoalescingCall, MAX_MESSAGES_IN_FLIGHT } from "../src/doors/grpc/write-coalescing.js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

/** A stand-in for grpc-js's call below the interceptor: records messages, completes writes when told. */
function fakeNext(): { call: ServerInterceptingCallInterface; sent: unknown[]; complete(): void; statuses: unknown[] } {
  const sent: unknown[] = [];
  const pending: Array<() => void> = [];
  const statuses: unknown[] = [];
  const call = {
    start: () => undefined,
    sendMetadata: () => undefined,
    sendMessage: (m: unknown, cb: () => void) => {
      sent.push(m);
      pending.push(cb);
    },
    sendStatus: (s: unknown) => void statuses.push(s),
    startRead: () => undefined,
  } as unknown as ServerInterceptingCallInterface;
  return { call, sent, statuses, complete: () => pending.shift()?.() };
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
