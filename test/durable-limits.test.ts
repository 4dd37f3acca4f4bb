/**
 * Durable streams with a fake Anthropic upstream (resume mid-stream, cancel
 * aborts the upstream, previous_response_id sends the conversation) and the
 * limits: the per-stream byte cap fails the stream clearly, and the cap on
 * running background responses per key answers 429.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startFakeAnthropic, textAnswer, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

type Event = { type: string; sequence_number: number; delta?: string; code?: string; response?: { id: string; status: string } };

async function collect(s: unknown): Promise<Event[]> {
  const out: Event[] = [];
  for await (const e of s as AsyncIterable<Event>) out.push(e);
  return out;
}

describe("durable streams: Anthropic upstream", () => {
  let fake: FakeAnthropic;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeAnthropic();
    gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { anthropic: { type: "anthropic", baseUrl: fake.baseUrl, apiKey: "sk-ant-test" } } });
    client = new OpenAI({ apiKey: "x", baseURL: gw.baseUrl, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it("a background stream cut mid-way resumes with exactly the rest; cancel aborts the upstream; the conversation goes upstream", async () => {
    fake.script = () => ({ events: textAnswer(["Bonjour ", "tout ", "le ", "monde"]), delayMs: 20 });
    const first: Event[] = [];
    for await (const e of (await client.responses.create({ model: "anthropic/claude-fake-1", input: "salut", stream: true, background: true })) as AsyncIterable<Event>) {
      first.push(e);
      if (e.type === "response.output_text.delta") break;
    }
    const id = first[0]!.response!.id;
    const rest = await collect(await client.responses.retrieve(id, { stream: true, starting_after: first.at(-1)!.sequence_number }));
    const all = [...first, ...rest];
    assert.deepEqual(all.map((e) => e.sequence_number), all.map((_, i) => i));
    assert.equal((await client.responses.retrieve(id)).output_text, "Bonjour tout le monde");

    fake.script = () => ({ events: textAnswer(["a", "b", "c"]), stallAfter: 4 });
    const aborted = fake.nextAbort();
    const bg = await client.responses.create({ model: "anthropic/claude-fake-1", input: "stall", background: true });
    assert.equal((await client.responses.cancel(bg.id)).status, "cancelled");
    await aborted;

    fake.script = () => ({ events: textAnswer(["ok"]) });
    await client.responses.create({ model: "anthropic/claude-fake-1", input: "next", previous_response_id: id });
    const body = fake.requests.at(-1)!.body as { messages: Array<{ role: string; content: unknown }> };
    assert.deepEqual(body.messages.map((m) => m.role), ["user", "assistant", "user"]);
    assert.match(JSON.stringify(body.messages[1]!.content), /Bonjour tout le monde/);
  });
});

describe("durable streams: limits", () => {
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    gw = await startTestGateway({
      streams: { maxStreamBytes: 400, maxBackgroundPerKey: 2 },
      providers: { local: { type: "local", tokenDelayMs: 20 } },
    });
    client = new OpenAI({ apiKey: "x", baseURL: gw.baseUrl, maxRetries: 0 });
  });
  after(() => gw.close());

  it("a stream past its log's byte cap fails with stream_log_too_large instead of growing", async () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
    const events = await collect(await client.responses.create({ model: "local/echo", input: long, stream: true }));
    const err = events.find((e) => e.type === "error");
    assert.equal(err?.code, "stream_log_too_large");
    assert.equal(events.at(-1)!.type, "response.failed");
  });

  it("more running background responses than the key's cap → 429 naming the limit", async () => {
    const long = Array.from({ length: 40 }, () => "x").join(" ");
    const a = await client.responses.create({ model: "local/echo", input: long, background: true, store: true });
    const b = await client.responses.create({ model: "local/echo", input: long, background: true });
    await assert.rejects(client.responses.create({ model: "local/echo", input: long, background: true }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.match(e.message, /background responses/);
      return true;
    });
    await client.responses.cancel(a.id);
    await client.responses.cancel(b.id);
    const c = await client.responses.create({ model: "local/echo", input: "room again", background: true });
    await client.responses.cancel(c.id);
  });
});
