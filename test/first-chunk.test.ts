/**
 * The first chunk goes out as soon as it is ready (issue 16, added time to
 * first chunk): a causal test, not a timed one. The fake upstream sends the
 * first content event, then waits — before it sends anything more — until
 * the client has received that content. A door that held the first chunk
 * back (for the next event, a batch, a tick that waits on more input, the
 * end of the stream) would never let the fake go on, and the test would
 * fail on its timeout instead of completing. Checked for the SSE door (the
 * openai SDK), the gRPC door with burst framing on (the generated grpc-js
 * client), and a burst: every chunk of one upstream read reaches the client
 * before the upstream sends the next event, so framing a burst holds nothing
 * back either. The door's keyed trace phases (src/engine/phase-channel.ts)
 * are published for every request, in order, with the door's own object.
 */
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { Phase, PHASE_CHANNEL, type KeyedPhase } from "../src/engine/phase-channel.js";
import { chatChunk, usageChunk, type FakeUpstream, startFakeOpenAi } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, spillwayClient } from "./helpers/grpc.js";

/** A promise and the function that resolves it. */
function latch(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Several SSE events as one raw write: what one upstream read carries in a burst. */
function burst(parts: string[]): string {
  return parts.map((p) => `data: ${JSON.stringify(chatChunk(p))}\n\n`).join("");
}

/** The answer the fake sends: `first` (raw text or chunks), then — after `gate` — " more" and the end. */
function gatedEvents(first: unknown[]): unknown[] {
  return [chatChunk("", { role: "assistant" }), ...first, chatChunk(" more"), chatChunk(null, {}, "stop"), usageChunk(3, 4)];
}

/** Upper bound for a test that would otherwise hang: a held-back chunk fails it here. */
const HANG = { timeout: 20_000 };

describe("first chunk out before the upstream's next event", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  let openai: OpenAI;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({ providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream" } } });
    client = spillwayClient(gw.grpcAddress!);
    openai = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    client.close();
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
  });

  it("SSE: the client reads the first delta while the upstream still waits to send the second", HANG, async () => {
    const received = latch();
    // Event 2 is " more": the fake sends it only once the client has "Hello".
    fake.script = () => ({ events: gatedEvents([chatChunk("Hello")]), gate: { index: 2, until: received.promise } });
    const stream = await openai.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "hi" }], stream: true });
    const texts: string[] = [];
    for await (const c of stream) {
      const t = c.choices[0]?.delta?.content;
      if (t) texts.push(t);
      if (t === "Hello") received.open();
    }
    assert.deepEqual(texts, ["Hello", " more"]);
  });

  it("gRPC: the client receives the first message while the upstream still waits to send the second", HANG, async () => {
    const received = latch();
    fake.script = () => ({ events: gatedEvents([chatChunk("Hello")]), gate: { index: 2, until: received.promise } });
    const texts = await readTexts(client, (t) => t === "Hello" && received.open());
    assert.deepEqual(texts, ["Hello", " more"]);
  });

  it("gRPC: every chunk of a burst reaches the client before the upstream sends its next event (framing holds nothing back)", HANG, async () => {
    const received = latch();
    const parts = ["a", "b", "c", "d"];
    let seen = 0;
    fake.script = () => ({ events: gatedEvents([burst(parts)]), gate: { index: 2, until: received.promise } });
    const texts = await readTexts(client, () => ++seen === parts.length && received.open());
    assert.deepEqual(texts, [...parts, " more"]);
  });

  it("SSE: every chunk of a burst reaches the client before the upstream sends its next event", HANG, async () => {
    const received = latch();
    const parts = ["a", "b", "c", "d"];
    fake.script = () => ({ events: gatedEvents([burst(parts)]), gate: { index: 2, until: received.promise } });
    const stream = await openai.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "hi" }], stream: true });
    const texts: string[] = [];
    for await (const c of stream) {
      const t = c.choices[0]?.delta?.content;
      if (t) texts.push(t);
      if (texts.length === parts.length) received.open();
    }
    assert.deepEqual(texts, [...parts, " more"]);
  });

  it("each door publishes its keyed phases in order, arrived → body read → first chunk → first flush, with one key per request", HANG, async () => {
    const seen: KeyedPhase[] = [];
    const listener = (m: unknown): void => {
      if (typeof m === "object" && m !== null) seen.push(m as KeyedPhase);
    };
    subscribe(PHASE_CHANNEL, listener);
    try {
      fake.script = () => ({ events: gatedEvents([chatChunk("Hello")]) });
      await readTexts(client, () => undefined);
      const stream = await openai.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "hi" }], stream: true });
      for await (const c of stream) void c;
    } finally {
      unsubscribe(PHASE_CHANNEL, listener);
    }
    for (const door of ["grpc", "sse"]) {
      const mine = seen.filter((m) => m.door === door);
      const firsts = [Phase.Arrived, Phase.BodyRead, Phase.FirstChunk, Phase.FirstFlush].map((p) => mine.findIndex((m) => m.phase === p));
      assert.ok(firsts.every((i) => i >= 0), `${door}: every door phase published (${JSON.stringify(seen.map((m) => [m.door, m.phase]))})`);
      assert.deepEqual([...firsts].sort((a, b) => a - b), firsts, `${door}: in order`);
      assert.equal(new Set(firsts.map((i) => mine[i]!.key)).size, 1, `${door}: one key for the request`);
    }
  });
});

/** Reads a Generate call's text chunks; `onText` runs as each arrives. Rejects on a non-OK status. */
function readTexts(client: SpillwayServiceClient, onText: (t: string) => unknown): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const texts: string[] = [];
    const call = client.generate(generateRequest("openai/gpt-fake", "hi"));
    call.on("data", (c: Chunk) => {
      if (c.payload?.$case !== "text") return;
      texts.push(c.payload.value.text);
      onText(c.payload.value.text);
    });
    call.on("error", reject);
    call.on("end", () => resolve(texts));
  });
}
