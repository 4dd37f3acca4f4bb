/**
 * POST /v1/responses end to end with the local echo model: the official
 * `openai` SDK's streaming helpers, raw SSE checked event by event against
 * OpenAI's published schemas, the non-streaming Response, and bad input.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { checkEvents, outputText, streamResponses, TEXT_SEQUENCE, typeSequence } from "./helpers/responses.js";
import { parseSse, postJson } from "./helpers/sse.js";

const run = promisify(execFile);

describe("POST /v1/responses with local/echo", () => {
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    gw = await startTestGateway();
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(() => gw.close());

  it("responses.create({stream:true}) yields OpenAI's event order with usage at the end", async () => {
    const stream = await client.responses.create({ model: "local/echo", input: "the quick brown fox", stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(typeSequence(events.map((data) => ({ event: data.type, data }))), TEXT_SEQUENCE);
    const deltas = events.filter((e) => e.type === "response.output_text.delta");
    assert.equal(deltas.length, 4);
    assert.equal(deltas.map((d) => (d.type === "response.output_text.delta" ? d.delta : "")).join(""), "the quick brown fox");
    const done = events.at(-1)!;
    assert.equal(done.type, "response.completed");
    if (done.type !== "response.completed") return;
    assert.equal(done.response.status, "completed");
    assert.equal(outputText(done.response), "the quick brown fox");
    assert.deepEqual([done.response.usage!.input_tokens, done.response.usage!.output_tokens, done.response.usage!.total_tokens], [5, 4, 9]);
    assert.equal(done.response.model, "echo");
    assert.match(done.response.id, /^resp_/);
  });

  it("responses.stream(...) helper reassembles the text and gives the final response", async () => {
    const runner = client.responses.stream({ model: "local/echo", input: [{ role: "user", content: "hello stream helper" }] });
    let text = "";
    runner.on("response.output_text.delta", (e) => (text += e.delta));
    const final = await runner.finalResponse();
    assert.equal(text, "hello stream helper");
    assert.equal(outputText(final), "hello stream helper");
    assert.equal(final.status, "completed");
  });

  it("every raw event validates against ResponseStreamEvent, with event: lines and sequence numbers", async () => {
    const events = await streamResponses(gw.baseUrl, {
      model: "local/echo",
      instructions: "be brief",
      input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "a b c" }] }],
    });
    assert.deepEqual(typeSequence(events), TEXT_SEQUENCE);
    const created = events[0]!.data.response;
    assert.equal(created.status, "in_progress");
    assert.equal(created.instructions, "be brief");
    assert.deepEqual(created.output, []);
    const textDone = events.find((e) => e.data.type === "response.output_text.done")!;
    assert.equal(textDone.data.text, "a b c");
    assert.equal(events.at(-1)!.data.response.output[0].content[0].text, "a b c");
  });

  it("max_output_tokens cuts the answer: response.incomplete with the reason", async () => {
    const events = await streamResponses(gw.baseUrl, { model: "local/echo", input: "one two three four", max_output_tokens: 2 });
    const last = events.at(-1)!.data;
    assert.equal(last.type, "response.incomplete");
    assert.equal(last.response.status, "incomplete");
    assert.deepEqual(last.response.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(last.response.output[0].content[0].text, "one two");
    assert.equal(last.response.usage.output_tokens, 2);
    assert.equal(last.response.max_output_tokens, 2);
  });

  it("answers without streaming with a whole Response object", async () => {
    const r = await client.responses.create({ model: "local/echo", input: "not streamed", instructions: "x", temperature: 0.5 });
    assert.equal(r.object, "response");
    assert.equal(r.status, "completed");
    assert.equal(r.output_text, "not streamed");
    assert.equal(r.temperature, 0.5);
    assert.equal(r.usage!.output_tokens, 2);
    const raw = await (await postJson(`${gw.baseUrl}/responses`, { model: "local/echo", input: "whole" })).json();
    assertSchema("Response", raw);
  });

  it("curl gets event: lines, sequence numbers and no [DONE]", async () => {
    const { stdout } = await run("curl", [
      "-sN",
      `${gw.baseUrl}/responses`,
      "-H",
      "Content-Type: application/json",
      "-d",
      '{"model":"local/echo","input":"hi curl","stream":true}',
    ]);
    assert.ok(stdout.startsWith("event: response.created\ndata: {"), stdout.slice(0, 80));
    assert.ok(!stdout.includes("[DONE]"));
    const events = parseSse(stdout).map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
    checkEvents(events);
    assert.deepEqual(typeSequence(events), TEXT_SEQUENCE);
  });

  it("the echo model answers all three text routes", async () => {
    const chat = await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "x y" }] });
    const legacy = await client.completions.create({ model: "local/echo", prompt: "x y" });
    const resp = await client.responses.create({ model: "local/echo", input: "x y" });
    assert.deepEqual([chat.choices[0]!.message.content, legacy.choices[0]!.text, resp.output_text], ["x y", "x y", "x y"]);
  });

  describe("bad input: 400 naming the field", () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["missing input", { model: "local/echo" }, "input"],
      ["unknown item type", { model: "local/echo", input: [{ type: "web_search_call", id: "x" }] }, "input[0].type"],
      ["unknown content part", { model: "local/echo", input: [{ role: "user", content: [{ type: "input_video" }] }] }, "input[0].content[0].type"],
      ["bad role", { model: "local/echo", input: [{ role: "robot", content: "hi" }] }, "input[0].role"],
      [
        "tool result for an unknown call id",
        { model: "local/echo", input: [{ role: "user", content: "hi" }, { type: "function_call_output", call_id: "call_nope", output: "42" }] },
        "input[1].call_id",
      ],
      ["function_call without name", { model: "local/echo", input: [{ type: "function_call", call_id: "c1", arguments: "{}" }] }, "input[0].name"],
      ["hosted tool", { model: "local/echo", input: "hi", tools: [{ type: "web_search" }] }, "tools[0].type"],
      ["bad tool name", { model: "local/echo", input: "hi", tools: [{ type: "function", name: "has space", parameters: {} }] }, "tools[0].name"],
      [
        "tool schema not an object schema",
        { model: "local/echo", input: "hi", tools: [{ type: "function", name: "f", parameters: { type: "string" } }] },
        "tools[0].parameters.type",
      ],
      [
        "tool schema properties not an object",
        { model: "local/echo", input: "hi", tools: [{ type: "function", name: "f", parameters: { type: "object", properties: [] } }] },
        "tools[0].parameters.properties",
      ],
      ["tool parameters not an object", { model: "local/echo", input: "hi", tools: [{ type: "function", name: "f", parameters: "x" }] }, "tools[0].parameters"],
      ["tool_choice names no tool", { model: "local/echo", input: "hi", tool_choice: { type: "function", name: "g" } }, "tool_choice.name"],
      ["previous_response_id not a string", { model: "local/echo", input: "hi", previous_response_id: 5 }, "previous_response_id"],
      ["max_output_tokens", { model: "local/echo", input: "hi", max_output_tokens: 0 }, "max_output_tokens"],
    ];
    for (const [name, body, param] of cases) {
      it(name, async () => {
        const res = await postJson(`${gw.baseUrl}/responses`, { ...body, stream: true });
        const j = (await res.json()) as { error: { param: string; message: string; type: string } };
        assert.equal(res.status, 400, JSON.stringify(j));
        assert.equal(j.error.param, param, j.error.message);
        assert.equal(j.error.type, "invalid_request_error");
        assert.ok(j.error.message.includes(param), j.error.message);
      });
    }

    it("the SDK surfaces it as BadRequestError", async () => {
      await assert.rejects(
        client.responses.create({ model: "local/echo", input: [{ type: "bogus" } as never], stream: true }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /input\[0\]\.type/.test(e.message),
      );
    });

    it("an unknown model is a 404 before any event", async () => {
      const res = await postJson(`${gw.baseUrl}/responses`, { model: "local/nope", input: "hi", stream: true });
      assert.equal(res.status, 404);
    });
  });
});
