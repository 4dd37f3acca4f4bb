/**
 * Stored and background Responses in front of a fake OpenAI upstream
 * (real chat-completions SSE): cancel aborts the upstream request, a client
 * leaving a stored foreground stream aborts it too (as OpenAI does) while a
 * background one runs on, and previous_response_id sends the whole stored
 * conversation — tool calls included — upstream.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { chatChunk, chatEvents, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";

type Event = { type: string; sequence_number: number; delta?: string; response?: { id: string; status: string; model: string } };

describe("stored responses with an OpenAI upstream", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up" } },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.script = () => ({});
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it("cancel of a background response aborts the upstream request", async () => {
    fake.script = () => ({ events: chatEvents(["a", "b", "c"]), stallAfter: 2 });
    const aborted = fake.nextAbort();
    const created = await client.responses.create({ model: "openai/gpt-fake", input: "long one", background: true });
    const r = await client.responses.cancel(created.id);
    assert.equal(r.status, "cancelled");
    const req = await aborted;
    assert.equal(req.url, "/v1/chat/completions", "the fake saw its request aborted");
  });

  it("a background stream runs on when its client leaves; a stored foreground one is aborted upstream", async () => {
    fake.script = () => ({ events: chatEvents(["one ", "two ", "three ", "four"]), delayMs: 30 });
    const stream = await client.responses.create({ model: "openai/gpt-fake", input: "bg", background: true, stream: true });
    let id = "";
    for await (const e of stream as AsyncIterable<Event>) {
      id ||= e.response?.id ?? "";
      if (e.type === "response.output_text.delta") break;
    }
    const events: Event[] = [];
    for await (const e of (await client.responses.retrieve(id, { stream: true })) as AsyncIterable<Event>) events.push(e);
    assert.equal(events.at(-1)!.type, "response.completed");
    assert.equal((await client.responses.retrieve(id)).output_text, "one two three four");

    fake.script = () => ({ events: chatEvents(["a", "b", "c"]), stallAfter: 2 });
    const aborted = fake.nextAbort();
    const fg = await client.responses.create({ model: "openai/gpt-fake", input: "fg", stream: true });
    let fgId = "";
    for await (const e of fg as AsyncIterable<Event>) {
      fgId ||= e.response?.id ?? "";
      if (e.type === "response.output_text.delta") break;
    }
    await aborted;
    const ended = await client.responses.retrieve(fgId);
    assert.equal(ended.status, "cancelled", "a stored foreground response whose client left ends cancelled");
  });

  it("a background response is queued until its upstream's first chunk, then in_progress (response.queued, as OpenAI); every event and object validates", async () => {
    let release!: () => void;
    const until = new Promise<void>((r) => (release = r));
    let seen!: () => void;
    const requested = new Promise<void>((r) => (seen = r));
    fake.script = () => {
      seen();
      return { events: chatEvents(["queued ", "then ", "done"]), gate: { index: 0, until } };
    };
    const created = await client.responses.create({ model: "openai/gpt-fake", input: "q", background: true });
    assert.equal(created.status, "queued");
    assertSchema("Response", created);
    await requested; // the upstream has the request and holds its first chunk
    const meanwhile = await client.responses.retrieve(created.id);
    assert.equal(meanwhile.status, "queued");
    assert.equal(meanwhile.model, "gpt-fake");
    const events: Event[] = [];
    for await (const e of (await client.responses.retrieve(created.id, { stream: true })) as AsyncIterable<Event>) {
      events.push(e);
      if (e.type === "response.queued") release(); // a follower of a queued response gets created + queued at once
    }
    assert.deepEqual(
      events.slice(0, 3).map((e) => [e.type, e.sequence_number, e.response?.status]),
      [
        ["response.created", 0, "queued"],
        ["response.queued", 1, "queued"],
        ["response.in_progress", 2, "in_progress"],
      ],
    );
    assert.equal(events.at(-1)!.type, "response.completed");
    for (const e of events) assertSchema("ResponseStreamEvent", e);
    const done = await client.responses.retrieve(created.id);
    assert.equal(done.status, "completed");
    assert.equal(done.output_text, "queued then done");
    assertSchema("Response", done);
    const replay: Event[] = [];
    for await (const e of (await client.responses.retrieve(created.id, { stream: true })) as AsyncIterable<Event>) replay.push(e);
    assert.deepEqual(replay, events, "a replay renders the queued phase as it was");
  });

  it("cancel of a queued background response aborts its upstream request; it ends cancelled (response.incomplete, no invented event)", async () => {
    fake.script = () => ({ events: chatEvents(["never"]), gate: { index: 0, until: new Promise(() => undefined) } });
    const aborted = fake.nextAbort();
    const created = await client.responses.create({ model: "openai/gpt-fake", input: "q", background: true, stream: true });
    let id = "";
    for await (const e of created as AsyncIterable<Event>) {
      id ||= e.response?.id ?? "";
      if (e.type === "response.queued") break;
    }
    const r = await client.responses.cancel(id);
    assert.equal(r.status, "cancelled");
    await aborted;
    const events: Event[] = [];
    for await (const e of (await client.responses.retrieve(id, { stream: true })) as AsyncIterable<Event>) events.push(e);
    assert.deepEqual(events.map((e) => e.type), ["response.created", "response.queued", "response.in_progress", "response.incomplete"]);
    assert.equal(events.at(-1)!.response!.status, "cancelled");
    for (const e of events) assertSchema("ResponseStreamEvent", e);
  });

  it("a background create that is refused (unknown model) is still an HTTP error, not a queued response", async () => {
    await assert.rejects(
      client.responses.create({ model: "nope/unknown", input: "q", background: true }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status !== undefined && e.status >= 400 && e.status < 500,
    );
  });

  it("previous_response_id sends the whole conversation upstream (inputs, outputs, tool calls)", async () => {
    fake.script = () => ({
      events: [
        chatChunk(null, { role: "assistant", tool_calls: [{ index: 0, id: "call_w", type: "function", function: { name: "weather", arguments: '{"city":"Oslo"}' } }] }),
        chatChunk(null, {}, "tool_calls"),
        usageChunk(5, 3),
      ],
    });
    const tools = [{ type: "function" as const, name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false }];
    const one = await client.responses.create({ model: "openai/gpt-fake", input: "weather in Oslo?", instructions: "be brief", tools });
    assert.equal(one.output[0]!.type, "function_call");
    fake.script = () => ({ events: chatEvents(["It is sunny."]) });
    const two = await client.responses.create({
      model: "openai/gpt-fake",
      previous_response_id: one.id,
      input: [{ type: "function_call_output", call_id: "call_w", output: "sunny" }],
      tools,
    });
    assert.equal(two.output_text, "It is sunny.");
    fake.script = () => ({ events: chatEvents(["Bye."]) });
    await client.responses.create({ model: "openai/gpt-fake", previous_response_id: two.id, input: "thanks" });
    const sent = fake.requests.at(-1)!.body as { messages: Array<{ role: string; content?: unknown; tool_calls?: Array<{ id: string }>; tool_call_id?: string }> };
    assert.deepEqual(
      sent.messages.map((m) => m.role),
      ["user", "assistant", "tool", "assistant", "user"],
      "instructions are not carried over (as with OpenAI); every turn is",
    );
    assert.equal(sent.messages[0]!.content, "weather in Oslo?");
    assert.equal(sent.messages[1]!.tool_calls![0]!.id, "call_w");
    assert.equal(sent.messages[2]!.tool_call_id, "call_w");
    assert.equal(sent.messages[3]!.content, "It is sunny.");
    assert.equal(sent.messages[4]!.content, "thanks");
  });
});
