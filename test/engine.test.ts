/** The stream engine's contract, with small in-test providers. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Finish_Reason, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import type { Provider, ProviderContext } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine, type StreamEngineOptions, type StreamSummary } from "../src/engine/stream-engine.js";
import { generateRequest } from "./helpers/generate-request.js";

type Gen = (ctx: ProviderContext) => AsyncIterable<ChunkPayload>;

function engineWith(gen: Gen, opts: Partial<StreamEngineOptions> = {}) {
  const provider: Provider = {
    name: "t",
    listModels: () => Promise.resolve([]),
    generate: (_m, _r, ctx) => gen(ctx),
  };
  return createStreamEngine({ router: createRouter([provider]), ...opts });
}

const req = generateRequest;

async function drain(it: AsyncIterable<Chunk>): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe("stream engine", () => {
  it("moves usage and finish to the end, merges usage, stamps id and seq", async () => {
    const engine = engineWith(async function* () {
      yield usagePayload({ inputTokens: 3 });
      yield textPayload("a");
      yield finishPayload(Finish_Reason.REASON_LENGTH);
      yield textPayload("b");
      yield usagePayload({ outputTokens: 2 });
    });
    const chunks = await drain(await engine.generate(req()));
    assert.deepEqual(
      chunks.map((c) => c.payload?.$case),
      ["text", "text", "usage", "finish"],
    );
    assert.deepEqual(
      chunks.map((c) => c.seq),
      [0, 1, 2, 3],
    );
    assert.equal(new Set(chunks.map((c) => c.streamId)).size, 1);
    const usage = chunks[2]!.payload;
    assert.ok(usage?.$case === "usage");
    assert.deepEqual([usage.value.inputTokens, usage.value.outputTokens, usage.value.totalTokens], [3, 2, 5]);
    const fin = chunks[3]!.payload;
    assert.ok(fin?.$case === "finish" && fin.value.reason === Finish_Reason.REASON_LENGTH);
  });

  it("finishes with STOP and zero usage when the provider says nothing", async () => {
    const engine = engineWith(async function* () {
      yield textPayload("a");
    });
    const chunks = await drain(await engine.generate(req()));
    const fin = chunks.at(-1)!.payload;
    assert.ok(fin?.$case === "finish" && fin.value.reason === Finish_Reason.REASON_STOP);
  });

  it("rejects with the provider's error when it fails before the first chunk", async () => {
    const engine = engineWith(async function* () {
      await sleep(1);
      throw new SpillwayError(Code.Unavailable, "upstream down", { httpStatus: 502 });
    });
    await assert.rejects(engine.generate(req()), (e: unknown) => e instanceof SpillwayError && e.code === Code.Unavailable);
  });

  it("turns a failure after the first chunk into one terminal error chunk", async () => {
    const engine = engineWith(async function* () {
      yield textPayload("a");
      throw new Error("socket hang up");
    });
    const chunks = await drain(await engine.generate(req()));
    assert.deepEqual(
      chunks.map((c) => c.payload?.$case),
      ["text", "error"],
    );
    const e = chunks[1]!.payload;
    assert.ok(e?.$case === "error");
    assert.equal(e.value.grpcCode, Code.Internal);
    assert.equal(e.value.message, "internal error", "internal details are not leaked");
  });

  it("times out a provider that never starts, even one that ignores its signal", async () => {
    const engine = engineWith(
      async function* () {
        await sleep(5_000);
        yield textPayload("late");
      },
      { timeoutMs: 50 },
    );
    await assert.rejects(engine.generate(req()), (e: unknown) => e instanceof SpillwayError && e.code === Code.DeadlineExceeded);
  });

  it("fails a stream idle longer than the idle timeout, in-band", async () => {
    let signal: AbortSignal | undefined;
    const engine = engineWith(
      async function* (ctx) {
        signal = ctx.signal;
        yield textPayload("a");
        await sleep(5_000, undefined, { signal: ctx.signal });
      },
      { idleTimeoutMs: 50 },
    );
    const chunks = await drain(await engine.generate(req()));
    const e = chunks.at(-1)!.payload;
    assert.ok(e?.$case === "error" && e.value.grpcCode === Code.DeadlineExceeded);
    assert.ok(signal?.aborted, "the provider's signal was aborted");
  });

  it("does not count time the consumer spends away as idle time", async () => {
    const engine = engineWith(
      async function* () {
        yield textPayload("a");
        yield textPayload("b");
      },
      { idleTimeoutMs: 30 },
    );
    const stream = await engine.generate(req());
    const out: string[] = [];
    for await (const c of stream) {
      out.push(c.payload!.$case);
      await sleep(60); // a slow client
    }
    assert.deepEqual(out, ["text", "text", "usage", "finish"]);
  });

  it("cancel() aborts the provider's signal at once and ends the stream", async () => {
    let signal: AbortSignal | undefined;
    const ended: StreamSummary[] = [];
    const engine = engineWith(
      async function* (ctx) {
        signal = ctx.signal;
        yield textPayload("a");
        await sleep(10_000, undefined, { signal: ctx.signal });
      },
      { onStreamEnd: (s) => ended.push(s) },
    );
    const stream = await engine.generate(req());
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const pending = it.next();
    stream.cancel();
    assert.equal(signal?.aborted, true);
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(ended.length, 1);
    assert.ok(ended[0]!.outcome instanceof SpillwayError && ended[0]!.outcome.code === Code.Canceled);
  });

  it("aborts the provider when the caller's signal aborts, and on shutdown", async () => {
    for (const which of ["client", "shutdown"] as const) {
      const client = new AbortController();
      const shutdown = new AbortController();
      let signal: AbortSignal | undefined;
      const engine = engineWith(
        async function* (ctx) {
          signal = ctx.signal;
          yield textPayload("a");
          await sleep(10_000, undefined, { signal: ctx.signal });
        },
        { shutdownSignal: shutdown.signal },
      );
      const stream = await engine.generate(req(), { signal: client.signal });
      (which === "client" ? client : shutdown).abort();
      assert.equal(signal?.aborted, true, which);
      const chunks = await drain(stream);
      assert.equal(chunks.at(-1)!.payload?.$case, "error");
    }
  });

  it("honours a client deadline", async () => {
    const engine = engineWith(async function* (ctx) {
      yield textPayload("a");
      await sleep(10_000, undefined, { signal: ctx.signal });
    });
    const chunks = await drain(await engine.generate(req(), { deadline: Date.now() + 50 }));
    const e = chunks.at(-1)!.payload;
    assert.ok(e?.$case === "error" && e.value.grpcCode === Code.DeadlineExceeded);
  });

  it("routes by provider prefix and rejects unknown providers and capabilities", async () => {
    const engine = engineWith(async function* () {
      yield textPayload("a");
    });
    await assert.rejects(engine.generate(req("other/m")), (e: unknown) => e instanceof SpillwayError && e.code === Code.NotFound);
    await assert.rejects(engine.generate(req("")), (e: unknown) => e instanceof SpillwayError && e.param === "model");
    await assert.rejects(
      engine.synthesize({ model: "t/m", input: "x", voice: "", encoding: 0, speed: 1, sampleRate: 0, instructions: "" }),
      /does not support speech synthesis/,
    );
  });
});
