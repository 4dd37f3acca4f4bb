/**
 * Taking ready chunks without a promise each (src/engine/poll.ts): the
 * provider queue, the lazy opener, a whole answer's list and the engine's
 * stream hand over what they hold through `tryNext()`, in the same order
 * and with the same stream invariant as `next()`; an aborted call still
 * fails with payloads queued; a source without `tryNext` is awaited.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { Finish_Reason, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { ListIterator } from "../src/engine/poll.js";
import type { Provider, ProviderContext } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import { LazyStream } from "../src/providers/shared/lazy-stream.js";
import { PushQueue, type PushFraming } from "../src/providers/shared/push-queue.js";
import { generateRequest } from "./helpers/generate-request.js";

const req = generateRequest();

function engineWith(gen: (ctx: ProviderContext) => AsyncIterable<ChunkPayload>) {
  const provider: Provider = { name: "t", listModels: () => Promise.resolve([]), generate: (_m, _r, ctx) => gen(ctx) };
  return createStreamEngine({ router: createRouter([provider]) });
}

const cases = (chunks: Chunk[]): string[] => chunks.map((c) => (c.payload?.$case === "text" ? `text:${c.payload.value.text}` : (c.payload?.$case ?? "?")));

describe("tryNext", () => {
  it("ListIterator hands over every item at once, then the end; return() drops the rest", async () => {
    const l = new ListIterator([1, 2, 3]);
    assert.deepEqual(l.tryNext(), { done: false, value: 1 });
    assert.deepEqual(await l.next(), { done: false, value: 2 });
    await l.return();
    assert.deepEqual(l.tryNext(), { done: true, value: undefined });
  });

  it("the engine's stream drains a ready source synchronously, usage and finish moved to the end", async () => {
    const engine = engineWith(() => new LazyStream(() => Promise.resolve(new ListIterator([usagePayload({ inputTokens: 2 }), textPayload("a"), finishPayload(Finish_Reason.REASON_LENGTH), textPayload("b"), usagePayload({ outputTokens: 3 })]))));
    const stream = await engine.generate(req);
    const out: Chunk[] = [];
    for (let r = stream.tryNext?.(); r && !r.done; r = stream.tryNext?.()) out.push(r.value);
    assert.deepEqual(cases(out), ["text:a", "text:b", "usage", "finish"]);
    assert.deepEqual(out.map((c) => c.seq), [0, 1, 2, 3]);
    const usage = out[2]!.payload;
    assert.ok(usage?.$case === "usage" && usage.value.inputTokens === 2 && usage.value.outputTokens === 3);
    const finish = out[3]!.payload;
    assert.ok(finish?.$case === "finish" && finish.value.reason === Finish_Reason.REASON_LENGTH);
    assert.deepEqual(stream.tryNext?.(), { done: true, value: undefined });
  });

  it("a source without tryNext: only the primed chunk is ready, the rest is awaited", async () => {
    const engine = engineWith(async function* () {
      yield textPayload("a");
      yield textPayload("b");
    });
    const stream = await engine.generate(req);
    const first = stream.tryNext?.();
    assert.ok(first && !first.done && first.value.payload?.$case === "text");
    assert.equal(stream.tryNext?.(), undefined);
    const rest: Chunk[] = [];
    for await (const c of stream) rest.push(c);
    assert.deepEqual(cases(rest), ["text:b", "usage", "finish"]);
  });

  it("an aborted call fails with an in-band error even while payloads are queued", async () => {
    const client = new AbortController();
    const provider: Provider = { name: "t", listModels: () => Promise.resolve([]), generate: () => new ListIterator([textPayload("a"), textPayload("b"), textPayload("c")]) };
    const engine = createStreamEngine({ router: createRouter([provider]) });
    const stream = await engine.generate(req, { signal: client.signal });
    assert.ok(stream.tryNext?.()?.done === false);
    client.abort(new SpillwayError(Code.Canceled, "gone"));
    const r = stream.tryNext?.();
    assert.ok(r && !r.done && r.value.payload?.$case === "error", "an error chunk");
    assert.deepEqual(stream.tryNext?.(), { done: true, value: undefined });
  });

  it("PushQueue: queued items, then a queued error thrown, then the end", () => {
    const body = new PassThrough();
    const framing: PushFraming<string> = {
      onData: (bytes, sink) => {
        for (const line of bytes.toString().split("\n")) {
          if (line === "fail") sink.fail(new Error("upstream broke"));
          else if (line) sink.emit(line);
        }
      },
      onEnd: () => undefined,
      readError: (e) => e as Error,
    };
    const q = new PushQueue(body, framing);
    assert.equal(q.tryNext(), undefined, "nothing yet: await next()");
    body.emit("data", Buffer.from("a\nb\nfail\n"));
    assert.deepEqual(q.tryNext(), { done: false, value: "a" });
    assert.deepEqual(q.tryNext(), { done: false, value: "b" });
    assert.throws(() => q.tryNext(), /upstream broke/);
    assert.deepEqual(q.tryNext(), { done: true, value: undefined });
    const lazy = new LazyStream(() => Promise.resolve(q));
    assert.equal(lazy.tryNext(), undefined, "not opened yet");
  });
});
