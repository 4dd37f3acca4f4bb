/**
 * The engine's per-stream timer (one timer for the first-chunk / idle limits and the stream's
 * deadline, issue 16 wave 6) and the ids it makes: the deadline still ends a stream the door is
 * not pulling, the idle limit still ends a waiting pull, and ids keep randomUUID's form.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { once } from "node:events";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import { textPayload, type ChunkPayload } from "../src/engine/payload.js";
import type { Provider, ProviderContext } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine, type StreamEngineOptions, type StreamSummary } from "../src/engine/stream-engine.js";
import { streamIdHex, uuidV4 } from "../src/engine/stream-id.js";
import { generateRequest } from "./helpers/generate-request.js";

function engineWith(gen: (ctx: ProviderContext) => AsyncIterable<ChunkPayload>, opts: Partial<StreamEngineOptions> = {}) {
  const provider: Provider = { name: "t", listModels: () => Promise.resolve([]), generate: (_m, _r, ctx) => gen(ctx) };
  return createStreamEngine({ router: createRouter([provider]), ...opts });
}

/** One chunk, then nothing until the call is aborted. */
async function* oneThenHang(ctx: ProviderContext): AsyncGenerator<ChunkPayload> {
  yield textPayload("a");
  await once(ctx.signal, "abort");
}

describe("the engine's one timer per stream", { timeout: 20_000 }, () => {
  // A deadline alone does not keep a process alive (a server's listening socket does): this stands in for it.
  let keep: NodeJS.Timeout;
  before(() => (keep = setInterval(() => undefined, 1000)));
  after(() => clearInterval(keep));

  it("ends a stream at its deadline while the door is not pulling (timeout, 504)", async () => {
    let ended: StreamSummary | undefined;
    // The timer is first armed for the 40 ms first-chunk limit; it fires with no pull waiting and is re-armed for the deadline.
    const engine = engineWith(oneThenHang, { timeoutMs: 40, maxStreamMs: 150, idleTimeoutMs: 60_000, onStreamEnd: (s) => (ended = s) });
    const stream = await engine.generate(generateRequest());
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value?.payload?.$case, "text");
    // The door does not pull: only the deadline can end the stream.
    const reason = await new Promise<unknown>((resolve) => stream.signal.addEventListener("abort", () => resolve(stream.signal.reason), { once: true }));
    assert.equal((reason as { reason?: string }).reason, "timeout");
    assert.match(String((reason as Error).message), /the stream exceeded its deadline \(1[45]\d ms\)/);
    const next = await it.next();
    assert.equal(next.value?.payload?.$case, "error");
    assert.equal(ended?.outcome !== "ok" && ended?.outcome.reason, "timeout");
  });

  it("ends a waiting pull at the idle limit before a far deadline (upstream_timeout)", async () => {
    const engine = engineWith(oneThenHang, { maxStreamMs: 600_000, idleTimeoutMs: 100 });
    const stream = await engine.generate(generateRequest());
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const next = await it.next();
    const p = next.value?.payload;
    assert.ok(p?.$case === "error");
    assert.match(p.value.message, /sent nothing for 100 ms/);
  });

  it("ends a waiting pull at the deadline when the deadline comes before the idle limit", async () => {
    const engine = engineWith(oneThenHang, { maxStreamMs: 120, idleTimeoutMs: 60_000 });
    const stream = await engine.generate(generateRequest());
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const next = await it.next();
    const p = next.value?.payload;
    assert.ok(p?.$case === "error");
    assert.match(p.value.message, /exceeded its deadline/);
  });

  it("fails before the first chunk at the first-chunk limit", async () => {
    const engine = engineWith(
      async function* (ctx) {
        await once(ctx.signal, "abort");
        yield textPayload("never");
      },
      { timeoutMs: 80 },
    );
    await assert.rejects(engine.generate(generateRequest()), /did not start streaming within 80 ms/);
  });
});

describe("pulls", () => {
  it("two next() calls at once both settle, in order", async () => {
    const engine = engineWith(async function* () {
      yield textPayload("a");
      await new Promise((r) => setImmediate(r));
      yield textPayload("b");
      await new Promise((r) => setImmediate(r));
      yield textPayload("c");
    });
    const stream = await engine.generate(generateRequest());
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const [b, c] = await Promise.all([it.next(), it.next()]);
    const text = (r: IteratorResult<Chunk>) => (r.value?.payload?.$case === "text" ? r.value.payload.value.text : r.value?.payload?.$case);
    assert.deepEqual([text(b), text(c)], ["b", "c"]);
  });

  it("a pull waiting on the provider fails at once when the call is cancelled", async () => {
    const engine = engineWith(oneThenHang);
    const stream = await engine.generate(generateRequest());
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const waiting = it.next();
    stream.cancel();
    const r = await waiting;
    assert.ok(r.done || r.value?.payload?.$case === "error");
  });
});

describe("engine ids", () => {
  it("uuidV4 has randomUUID's form and stream ids its form without dashes", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const u = uuidV4();
      assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const h = streamIdHex();
      assert.match(h, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
      seen.add(u).add(h);
    }
    assert.equal(seen.size, 4000, "no id repeats");
  });
});
