/**
 * The gRPC door in front of a fake OpenAI upstream: ordering and the
 * usage/finish invariant, client cancel and deadlines aborting the upstream
 * request, upstream failures before the first chunk (a status) and after it
 * (an in-band error chunk, then OK).
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ServiceError } from "@grpc/grpc-js";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { chatChunk, chatEvents, type FakeScript, type FakeUpstream, startFakeOpenAi } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

const text = (chunks: Chunk[]): string[] => chunks.flatMap((c) => (c.payload?.$case === "text" ? [c.payload.value.text] : []));

describe("gRPC door with an OpenAI upstream", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({
      // Timeouts far beyond the tests' deadlines, so an abort the fake sees
      // can only come from the client's cancel or deadline.
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream", timeoutMs: 30_000 } },
      limits: { idleTimeoutMs: 30_000 },
    });
    client = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    client.close();
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
    fake.requests.length = 0;
  });

  it("relays deltas in order, seq monotonic, usage then finish last", async () => {
    const parts = Array.from({ length: 50 }, (_, i) => ` w${i}`);
    fake.script = () => ({ events: chatEvents(parts, [7, 50]) });
    const { chunks, error } = await readAll(client.generate(generateRequest("openai/gpt-fake", "count", { temperature: 0.5 })));
    assert.equal(error, undefined);
    assert.deepEqual(text(chunks), parts);
    assert.deepEqual(
      chunks.map((c) => c.seq),
      chunks.map((_, i) => i),
    );
    assert.deepEqual(
      chunks.slice(-2).map((c) => c.payload?.$case),
      ["usage", "finish"],
    );
    assert.ok(!chunks.slice(0, -2).some((c) => c.payload?.$case === "usage" || c.payload?.$case === "finish"));
    const usage = chunks.at(-2)!.payload;
    assert.ok(usage?.$case === "usage");
    assert.deepEqual([usage.value.inputTokens, usage.value.outputTokens], [7, 50]);
    const up = fake.requests[0]!;
    assert.equal(up.body.model, "gpt-fake");
    assert.equal(up.body.temperature, 0.5);
    assert.equal(up.headers.authorization, "Bearer sk-upstream");
  });

  it("a client cancel aborts the upstream request and ends with CANCELLED", async () => {
    fake.script = () => ({ events: chatEvents(["a", "b", "c"]), stallAfter: 2 });
    const aborted = fake.nextAbort();
    const call = client.generate(generateRequest("openai/gpt-fake", "x"));
    const result = new Promise<ServiceError>((resolve) => call.on("error", resolve));
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.cancel();
    assert.equal((await result).code, status.CANCELLED);
    const rec = await aborted;
    assert.equal(rec.url, "/v1/chat/completions");
  });

  it("a client cancel before the first chunk aborts the upstream request too", async () => {
    fake.script = () => ({ headerDelayMs: 5_000 });
    const aborted = fake.nextAbort();
    const call = client.generate(generateRequest("openai/gpt-fake", "x"));
    const result = readAll(call);
    while (fake.requests.length === 0) await sleep(10);
    call.cancel();
    const { chunks, error } = await result;
    assert.equal(chunks.length, 0);
    assert.equal(error?.code, status.CANCELLED);
    await aborted;
  });

  it("gateway shutdown ends a stream in flight with an in-band error and aborts the upstream", async () => {
    const gw2 = await startTestGateway({
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "k", timeoutMs: 30_000 } },
      limits: { idleTimeoutMs: 30_000 },
    });
    const c2 = spillwayClient(gw2.grpcAddress!);
    try {
      fake.script = () => ({ events: chatEvents(["a", "b", "c"]), stallAfter: 2 });
      const aborted = fake.nextAbort();
      const call = c2.generate(generateRequest("openai/gpt-fake", "x"));
      const result = readAll(call);
      await new Promise<void>((resolve) => call.once("data", () => resolve()));
      await gw2.close();
      const { chunks, error } = await result;
      assert.equal(error, undefined, "the call ends OK after its in-band error");
      const last = chunks.at(-1)!.payload;
      assert.ok(last?.$case === "error", `last chunk: ${last?.$case}`);
      assert.match(last.value.message, /shutting down/);
      await aborted;
    } finally {
      c2.close();
    }
  });

  it("an expired deadline before the first chunk aborts the upstream and ends with DEADLINE_EXCEEDED", async () => {
    fake.script = () => ({ headerDelayMs: 5_000 });
    const aborted = fake.nextAbort();
    const { chunks, error } = await readAll(
      client.generate(generateRequest("openai/gpt-fake", "x"), { deadline: Date.now() + 300 }),
    );
    assert.equal(chunks.length, 0);
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    await aborted;
  });

  it("an expired deadline mid-stream aborts the upstream and ends with DEADLINE_EXCEEDED", async () => {
    fake.script = () => ({ events: chatEvents(["a", "b", "c"]), stallAfter: 2 });
    const aborted = fake.nextAbort();
    const { chunks, error } = await readAll(
      client.generate(generateRequest("openai/gpt-fake", "x"), { deadline: Date.now() + 400 }),
    );
    assert.ok(chunks.length >= 1, "the chunks sent before the deadline arrive");
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    await aborted;
  });

  for (const [upstream, code] of [
    [401, status.UNAUTHENTICATED],
    [404, status.NOT_FOUND],
    [429, status.RESOURCE_EXHAUSTED],
    [503, status.UNAVAILABLE],
  ] as const) {
    it(`an upstream ${upstream} before the first chunk is ${status[code]}`, async () => {
      fake.script = () => ({ status: upstream });
      const { chunks, error } = await readAll(client.generate(generateRequest("openai/gpt-fake", "x")));
      assert.equal(chunks.length, 0);
      assert.equal(error?.code, code, error?.details);
      assert.match(error.details, new RegExp(`fake failure ${upstream}|${upstream}`));
    });
  }

  it("an unreachable upstream is UNAVAILABLE", async () => {
    const gw2 = await startTestGateway({ providers: { openai: { type: "openai", baseUrl: "http://127.0.0.1:9/v1" } } });
    const c2 = spillwayClient(gw2.grpcAddress!);
    try {
      const { error } = await readAll(c2.generate(generateRequest("openai/x", "x")));
      assert.equal(error?.code, status.UNAVAILABLE);
      assert.match(error.details, /unreachable/);
    } finally {
      c2.close();
      await gw2.close();
    }
  });

  for (const [name, script, pattern] of [
    ["dies mid-stream", { events: chatEvents(["a", "b", "c", "d"]), destroyAfter: 3, delayMs: 20 }, /broke off/],
    ["sends an in-band error", { events: [chatChunk("a"), { error: { message: "model crashed" } }] }, /model crashed/],
  ] as Array<[string, FakeScript, RegExp]>) {
    it(`after the first chunk, an upstream that ${name} yields one in-band error chunk and status OK`, async () => {
      fake.script = () => script;
      const { chunks, error } = await readAll(client.generate(generateRequest("openai/gpt-fake", "x")));
      assert.equal(error, undefined, "the call itself ends OK");
      assert.equal(text(chunks)[0], "a", "what was sent before the error is kept");
      const last = chunks.at(-1)!.payload;
      assert.ok(last?.$case === "error", `last chunk is ${last?.$case}`);
      assert.match(last.value.message, pattern);
      assert.ok(last.value.grpcCode > 0);
      assert.ok(!chunks.some((c) => c.payload?.$case === "finish"));
    });
  }
});
