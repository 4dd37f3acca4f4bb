/**
 * The HTTP door end to end with the local echo model, driven by the official
 * `openai` SDK and by curl, with every SSE event validated against OpenAI's
 * published schemas.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse } from "./helpers/sse.js";

const run = promisify(execFile);

describe("HTTP door with local/echo", () => {
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    gw = await startTestGateway();
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(() => gw.close());

  it("streams a chat completion through the openai SDK, usage and finish last", async () => {
    const stream = await client.chat.completions.create({
      model: "local/echo",
      messages: [{ role: "user", content: "the quick brown fox" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length >= 6, `expected one chunk per token plus finish and usage chunks, got ${chunks.length}`);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, "the quick brown fox");
    for (const c of chunks.slice(0, -2)) {
      assert.equal(c.choices[0]!.finish_reason, null);
      assert.equal(c.usage ?? undefined, undefined);
      assert.equal(c.model, "echo");
    }
    // OpenAI's form with include_usage: the finish chunk without usage, then
    // one chunk whose choices is an empty array and which carries usage.
    const finish = chunks.at(-2)!;
    assert.equal(finish.choices[0]!.finish_reason, "stop");
    assert.equal(finish.usage ?? undefined, undefined);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(
      { p: last.usage!.prompt_tokens, c: last.usage!.completion_tokens, t: last.usage!.total_tokens },
      { p: 5, c: 4, t: 9 },
    );
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
  });

  it("without include_usage, usage rides on the final finish chunk (usage and finish only at the end)", async () => {
    const stream = await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "one two" }], stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage ?? undefined, undefined);
    const last = chunks.at(-1)!;
    assert.equal(last.choices[0]!.finish_reason, "stop");
    assert.equal(last.usage!.completion_tokens, 2);
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
  });

  it("answers a non-streaming chat completion", async () => {
    const r = await client.chat.completions.create({
      model: "local/echo",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello there" },
      ],
      max_tokens: 1,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]!.message.content, "hello");
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage!.completion_tokens, 1);
    assertSchema("CreateChatCompletionResponse", r);
  });

  it("streams and non-streams legacy completions", async () => {
    const stream = await client.completions.create({ model: "local/echo", prompt: "one two three", stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]!.text;
      finish = c.choices[0]!.finish_reason ?? finish;
    }
    assert.equal(text, "one two three");
    assert.equal(finish, "stop");
    const whole = await client.completions.create({ model: "local/echo", prompt: "one two three", stop: [" three"] });
    assert.equal(whole.choices[0]!.text, "one two");
    assertSchema("CreateCompletionResponse", whole);
  });

  it("legacy completion SSE events validate against CreateCompletionResponse", async () => {
    const res = await fetch(`${gw.baseUrl}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/echo", prompt: "a b c", stream: true, stream_options: { include_usage: true } }),
    });
    const events = parseSse(await res.text());
    assert.equal(events.at(-1)!.data, "[DONE]");
    const json = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.equal(json.length, 5);
    const usageChunk = json.pop();
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 3);
    for (const [i, c] of json.entries()) {
      // The published schema makes finish_reason a required string, yet the
      // streamed chunks of the real API carry `null` until the last one; the
      // non-final chunks are checked with it set to the value they lead to.
      const last = i === json.length - 1;
      if (!last) assert.equal(c.choices[0].finish_reason, null);
      assert.equal(c.usage, undefined);
      assertSchema("CreateCompletionResponse", last ? c : { ...c, choices: [{ ...c.choices[0], finish_reason: "stop" }] });
    }
  });

  it("serves the seed's curl request: data chunks then data: [DONE]", async () => {
    const { stdout } = await run("curl", [
      "-sN",
      `${gw.baseUrl}/chat/completions`,
      "-H",
      "Content-Type: application/json",
      "-d",
      '{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"stream":true}',
    ]);
    const events = parseSse(stdout);
    assert.ok(events.length >= 3);
    assert.equal(events.at(-1)!.data, "[DONE]");
    for (const e of events.slice(0, -1)) assertSchema("CreateChatCompletionStreamResponse", JSON.parse(e.data));
    assert.ok(stdout.startsWith("data: {"));
  });

  it("lists models and health", async () => {
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === "local/echo"));
    const one = await client.models.retrieve("local/echo");
    assert.equal(one.id, "local/echo");
    const health = await fetch(`${gw.origin}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${gw.origin}/readyz`);
    assert.equal(((await ready.json()) as { status: string }).status, "ready");
  });
});
