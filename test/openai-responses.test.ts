/**
 * `/v1/responses` in front of OpenAI upstreams, both ways the openai
 * provider serves it: built from an upstream's chat completions stream, and
 * (with `responsesApi: true`) passed through to the upstream's native
 * `/responses`, its events translated into chunks and rebuilt by the door.
 * The official `openai` SDK drives both; every event is schema-checked.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { outputText, streamResponses, TEXT_SEQUENCE, typeSequence } from "./helpers/responses.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";
import { upstreamResponses } from "./helpers/upstream-responses.js";

const ARG_PIECES = ['{"q": "caf', '\\u00e9 \\"best\\"', ' ☕"}'];
const ARGS = ARG_PIECES.join("");

describe("Responses API with OpenAI upstreams", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-chat" },
        native: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-native", responsesApi: true },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.script = (req) =>
      req.url.endsWith("/responses") ? { events: upstreamResponses({ text: ["Hi", " there"] }), done: false } : { events: chatEvents(["Hi", " there"], [7, 2]) };
  });

  describe("built from the upstream's chat completions stream", () => {
    it("responses.create({stream:true}) and responses.stream(...) complete", async () => {
      const stream = await client.responses.create({ model: "openai/gpt-fake", input: "hello", instructions: "sys", stream: true });
      const events = [];
      for await (const e of stream) events.push(e);
      assert.deepEqual(typeSequence(events.map((data) => ({ event: data.type, data }))), TEXT_SEQUENCE);
      const final = await client.responses.stream({ model: "openai/gpt-fake", input: "hello", max_output_tokens: 20 }).finalResponse();
      assert.equal(outputText(final), "Hi there");
      assert.deepEqual([final.usage!.input_tokens, final.usage!.output_tokens], [7, 2]);
      assert.equal(fake.requests[0]!.url, "/v1/chat/completions");
      assert.deepEqual(fake.requests[0]!.body.messages, [
        { role: "system", content: "sys" },
        { role: "user", content: "hello" },
      ]);
      assert.equal(fake.requests[1]!.body.max_tokens, 20);
    });

    it("every raw event validates", async () => {
      const events = await streamResponses(gw.baseUrl, { model: "openai/gpt-fake", input: [{ role: "user", content: [{ type: "input_text", text: "x" }] }] });
      assert.deepEqual(typeSequence(events), TEXT_SEQUENCE);
    });

    it("text.format and reasoning.effort become response_format and reasoning_effort upstream", async () => {
      await client.responses.create({
        model: "openai/gpt-fake",
        input: "x",
        text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true } },
        reasoning: { effort: "low" },
      });
      const body = fake.requests[0]!.body;
      assert.deepEqual(body.response_format, { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } });
      assert.equal(body.reasoning_effort, "low");
    });
  });

  describe("passed through to a native /responses upstream (responsesApi: true)", () => {
    it("responses.create({stream:true}) and responses.stream(...) complete; the upstream gets a Responses request", async () => {
      const stream = await client.responses.create({ model: "native/gpt-fake", input: "hello", instructions: "sys", stream: true, max_output_tokens: 30 });
      const events = [];
      for await (const e of stream) events.push(e);
      assert.deepEqual(typeSequence(events.map((data) => ({ event: data.type, data }))), TEXT_SEQUENCE);
      const up = fake.requests[0]!;
      assert.equal(up.url, "/v1/responses");
      assert.equal(up.headers["authorization"], "Bearer sk-native");
      assert.deepEqual(up.body, {
        model: "gpt-fake",
        input: [
          { type: "message", role: "system", content: "sys" },
          { type: "message", role: "user", content: "hello" },
        ],
        stream: true,
        store: false,
        max_output_tokens: 30,
      });
      const final = await client.responses.stream({ model: "native/gpt-fake", input: "hello" }).finalResponse();
      assert.equal(outputText(final), "Hi there");
      assert.deepEqual([final.usage!.input_tokens, final.usage!.output_tokens], [9, 5]);
      const raw = await streamResponses(gw.baseUrl, { model: "native/gpt-fake", input: "hello" });
      assert.deepEqual(typeSequence(raw), TEXT_SEQUENCE);
    });

    it("chat completions are served from the native upstream too", async () => {
      const r = await client.chat.completions.create({ model: "native/gpt-fake", messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "Hi there");
      assert.equal(fake.requests[0]!.url, "/v1/responses");
    });

    it("requests the Responses API cannot carry (stop sequences, chat-only fields) go to /chat/completions", async () => {
      await client.chat.completions.create({ model: "native/gpt-fake", messages: [{ role: "user", content: "x" }], stop: ["z"] });
      await client.chat.completions.create({ model: "native/gpt-fake", messages: [{ role: "user", content: "x" }], seed: 3 });
      await client.completions.create({ model: "native/gpt-fake", prompt: "x" }).catch(() => undefined);
      assert.deepEqual(
        fake.requests.map((r) => r.url),
        ["/v1/chat/completions", "/v1/chat/completions", "/v1/completions"],
      );
    });

    it("a tool-calling conversation through Responses and through chat, arguments exact", async () => {
      fake.script = (req) => {
        const outputs = (req.body.input as any[]).filter((i) => i.type === "function_call_output");
        if (outputs.length === 0) return { events: upstreamResponses({ calls: [{ id: "call_N", name: "search", pieces: ARG_PIECES }] }), done: false };
        return { events: upstreamResponses({ text: ["Found: ", outputs[0].output] }), done: false };
      };
      const tool = { type: "function" as const, name: "search", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: false };
      const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "find coffee" }];
      const r1 = await client.responses.stream({ model: "native/gpt-fake", input, tools: [tool] }).finalResponse();
      const call = r1.output.find((o) => o.type === "function_call")!;
      assert.equal(call.type, "function_call");
      if (call.type !== "function_call") return;
      assert.deepEqual([call.call_id, call.name, call.arguments], ["call_N", "search", ARGS]);
      assert.deepEqual(fake.requests[0]!.body.tools, [{ type: "function", name: "search", parameters: tool.parameters, strict: false }]);

      input.push(call, { type: "function_call_output", call_id: "call_N", output: "Blue Bottle" });
      const r2 = await client.responses.stream({ model: "native/gpt-fake", input, tools: [tool] }).finalResponse();
      assert.equal(outputText(r2), "Found: Blue Bottle");
      assert.deepEqual(fake.requests[1]!.body.input.slice(1), [
        { type: "function_call", call_id: "call_N", name: "search", arguments: ARGS },
        { type: "function_call_output", call_id: "call_N", output: "Blue Bottle" },
      ]);

      const chatTool = { type: "function" as const, function: { name: "search", parameters: tool.parameters } };
      const c1 = await client.chat.completions.stream({ model: "native/gpt-fake", messages: [{ role: "user", content: "find" }], tools: [chatTool] }).finalChatCompletion();
      assert.equal(c1.choices[0]!.finish_reason, "tool_calls");
      const tc = c1.choices[0]!.message.tool_calls![0]!;
      assert.equal(tc.type === "function" ? tc.function.arguments : "", ARGS);
    });

    it("parallel calls from the upstream keep their indexes", async () => {
      fake.script = () => ({
        events: upstreamResponses({ text: ["Two:"], calls: [{ id: "c1", name: "a", pieces: ['{"x":', "1}"] }, { id: "c2", name: "b", pieces: ['{"y":2}'] }] }),
        done: false,
      });
      const r = await client.responses.stream({ model: "native/gpt-fake", input: "x", tools: [{ type: "function", name: "a", parameters: {}, strict: false }] }).finalResponse();
      assert.deepEqual(
        r.output.map((o) => (o.type === "function_call" ? `${o.call_id}:${o.arguments}` : o.type)),
        ["message", 'c1:{"x":1}', 'c2:{"y":2}'],
      );
    });

    it("response.incomplete upstream → incomplete downstream", async () => {
      fake.script = () => ({ events: upstreamResponses({ text: ["cut"], incomplete: "max_output_tokens" }), done: false });
      const events = await streamResponses(gw.baseUrl, { model: "native/gpt-fake", input: "x" });
      assert.equal(events.at(-1)!.data.type, "response.incomplete");
      assert.deepEqual(events.at(-1)!.data.response.incomplete_details, { reason: "max_output_tokens" });
    });

    it("an upstream failure mid-stream is in-band: error then response.failed", async () => {
      fake.script = () => ({ events: upstreamResponses({ text: ["part"], fail: { code: "server_error", message: "upstream broke" } }), done: false });
      const events = await streamResponses(gw.baseUrl, { model: "native/gpt-fake", input: "x" });
      assert.deepEqual(events.slice(-2).map((e) => e.data.type), ["error", "response.failed"]);
      assert.match(events.at(-2)!.data.message, /upstream broke/);
    });

    it("a truncated upstream stream is an in-band error, not a silent end", async () => {
      fake.script = () => ({ events: upstreamResponses({ text: ["a", "b", "c"], cutAfter: 6 }), done: false });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "native/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
      const last = parseSse(await res.text()).at(-1)!;
      assert.equal(JSON.parse(last.data).error.code, "upstream_truncated");
    });

    it("a client that leaves mid-stream aborts the upstream request", async () => {
      fake.script = () => ({ events: upstreamResponses({ text: Array.from({ length: 200 }, (_, i) => `t${i} `) }), done: false, delayMs: 15 });
      const aborted = fake.nextAbort();
      const res = await postJson(`${gw.baseUrl}/responses`, { model: "native/gpt-fake", input: "x", stream: true });
      let n = 0;
      await readSse(res, (e) => (e.event === "response.output_text.delta" && ++n >= 3 ? "stop" : undefined));
      const rec = await aborted;
      assert.equal(rec.url, "/v1/responses");
    });
  });
});
