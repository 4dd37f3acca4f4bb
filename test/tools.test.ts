/**
 * Tool (function) calling end to end, through chat completions and the
 * Responses API, streamed, for an OpenAI upstream and an Anthropic upstream
 * (both fakes speaking the real wire formats), driven by the official
 * `openai` SDK: the model asks for a tool, the client sends the result, the
 * model answers. Arguments arrive in awkward pieces and must be reassembled
 * exactly; parallel calls keep their indexes apart; bad input is a 400
 * naming the field.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { messageEnd, messageStart, startFakeAnthropic, toolUseBlock, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { anthropicConversation, openAiConversation } from "./helpers/tool-conversations.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { outputText, streamResponses } from "./helpers/responses.js";
import { parseSse, postJson } from "./helpers/sse.js";

/** Arguments split mid-string, mid-escape and mid-unicode, as upstreams do. */
const ARG_PIECES = ['{"ci', 'ty": "Par', 'is \\"Ville', ' Lumi\\u00e8re\\" ✓', '", "units": ["c", ', '"f"], "n": 1', "}"];
const ARGS = ARG_PIECES.join("");
const SECOND_ARGS = '{"city": "Oslo"}';

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const responsesTool = { type: "function" as const, name: "get_weather", description: "Weather for a city", parameters: weatherTool.function.parameters, strict: false };


describe("tool calling end to end", () => {
  let openai: FakeUpstream;
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    openai = await startFakeOpenAi();
    anthropic = await startFakeAnthropic();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-up" },
        anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "sk-ant" },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await openai.close();
    await anthropic.close();
  });
  beforeEach(() => {
    openai.requests.length = 0;
    anthropic.requests.length = 0;
  });

  for (const model of ["openai/gpt-fake", "anthropic/claude-fake-1"]) {
    describe(model, () => {
      beforeEach(() => {
        openai.script = openAiConversation([{ id: "call_A", name: "get_weather", pieces: ARG_PIECES }]);
        anthropic.script = anthropicConversation([{ id: "toolu_A", name: "get_weather", pieces: ARG_PIECES }]);
      });
      const callId = model.startsWith("openai") ? "call_A" : "toolu_A";

      it("chat completions, streamed: tool call, result, answer", async () => {
        const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Paris?" }];
        const first = client.chat.completions.stream({ model, messages, tools: [weatherTool] });
        const chunks: OpenAI.ChatCompletionChunk[] = [];
        first.on("chunk", (c) => chunks.push(c));
        const done = await first.finalChatCompletion();
        for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
        const choice = done.choices[0]!;
        assert.equal(choice.finish_reason, "tool_calls");
        assert.equal(choice.message.tool_calls!.length, 1);
        const call = choice.message.tool_calls![0]!;
        assert.equal(call.type, "function");
        if (call.type !== "function") return;
        assert.equal(call.id, callId);
        assert.equal(call.function.name, "get_weather");
        assert.equal(call.function.arguments, ARGS, "arguments reassembled exactly");
        assert.deepEqual(JSON.parse(call.function.arguments).units, ["c", "f"]);

        messages.push(choice.message, { role: "tool", tool_call_id: call.id, content: "22C sunny" });
        const second = await client.chat.completions.stream({ model, messages, tools: [weatherTool] }).finalChatCompletion();
        assert.equal(second.choices[0]!.message.content, "It is 22C sunny");
        assert.equal(second.choices[0]!.finish_reason, "stop");
        if (model.startsWith("openai")) {
          const up = openai.requests[1]!.body;
          assert.deepEqual(up.tools[0], weatherTool);
          assert.deepEqual(up.messages[1].tool_calls, [{ id: "call_A", type: "function", function: { name: "get_weather", arguments: ARGS } }]);
          assert.deepEqual(up.messages[2], { role: "tool", content: "22C sunny", tool_call_id: "call_A" });
        } else {
          const up = anthropic.requests[1]!.body;
          assert.deepEqual(up.tools, [{ name: "get_weather", description: "Weather for a city", input_schema: weatherTool.function.parameters }]);
          assert.deepEqual(up.messages[1], {
            role: "assistant",
            content: [
              { type: "text", text: "Let me check." },
              { type: "tool_use", id: "toolu_A", name: "get_weather", input: JSON.parse(ARGS) },
            ],
          });
          assert.deepEqual(up.messages[2], { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_A", content: "22C sunny" }] });
        }
      });

      it("Responses, streamed: function_call item, function_call_output, answer", async () => {
        const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Weather in Paris?" }];
        const first = client.responses.stream({ model, input, tools: [responsesTool] });
        let argDeltas = "";
        first.on("response.function_call_arguments.delta", (e) => (argDeltas += e.delta));
        const r1 = await first.finalResponse();
        const calls = r1.output.filter((o) => o.type === "function_call");
        assert.equal(calls.length, 1);
        const call = calls[0]!;
        assert.equal(call.call_id, callId);
        assert.equal(call.name, "get_weather");
        assert.equal(call.arguments, ARGS, "arguments reassembled exactly");
        assert.equal(argDeltas, ARGS);
        assert.equal(call.status, "completed");
        assert.equal(r1.status, "completed");

        input.push(...(r1.output as OpenAI.Responses.ResponseInputItem[]), { type: "function_call_output", call_id: call.call_id, output: "22C sunny" });
        const r2 = await client.responses.stream({ model, input, tools: [responsesTool] }).finalResponse();
        assert.equal(outputText(r2), "It is 22C sunny");
        if (model.startsWith("openai")) {
          const up = openai.requests[1]!.body;
          assert.deepEqual(up.tools, [weatherTool]);
          assert.equal(up.messages.at(-2).role, "assistant");
          assert.deepEqual(up.messages.at(-2).tool_calls[0].function, { name: "get_weather", arguments: ARGS });
          assert.deepEqual(up.messages.at(-1), { role: "tool", content: "22C sunny", tool_call_id: "call_A" });
        } else {
          const up = anthropic.requests[1]!.body;
          assert.deepEqual(up.messages.at(-1).content, [{ type: "tool_result", tool_use_id: "toolu_A", content: "22C sunny" }]);
          assert.equal(up.messages.at(-2).content.at(-1).type, "tool_use");
        }
      });

      it("Responses raw events: function call events validate and come in order", async () => {
        const events = await streamResponses(gw.baseUrl, { model, input: "Weather?", tools: [responsesTool] });
        const types = events.map((e) => e.data.type);
        const added = types.lastIndexOf("response.output_item.added");
        const argsDone = types.indexOf("response.function_call_arguments.done");
        assert.ok(added < types.indexOf("response.function_call_arguments.delta"));
        assert.ok(argsDone > types.lastIndexOf("response.function_call_arguments.delta"));
        assert.equal(types[argsDone + 1], "response.output_item.done");
        assert.equal(types.at(-1), "response.completed");
        assert.equal(events[argsDone]!.data.arguments, ARGS);
        assert.equal(events[argsDone]!.data.name, "get_weather");
      });
    });
  }

  describe("parallel tool calls keep their indexes apart", () => {
    const calls = [
      { id: "call_P", name: "get_weather", pieces: ARG_PIECES },
      { id: "call_O", name: "get_time", pieces: ['{"city":', ' "Oslo"}'] },
    ];

    for (const interleave of [false, true]) {
      it(`OpenAI upstream, ${interleave ? "interleaved" : "sequential"} argument pieces: chat and Responses`, async () => {
        openai.script = openAiConversation(calls, interleave);
        const chat = await client.chat.completions.stream({ model: "openai/gpt-fake", messages: [{ role: "user", content: "both" }], tools: [weatherTool] }).finalChatCompletion();
        const got = chat.choices[0]!.message.tool_calls!.map((c) => (c.type === "function" ? [c.id, c.function.name, c.function.arguments] : []));
        assert.deepEqual(got, [
          ["call_P", "get_weather", ARGS],
          ["call_O", "get_time", SECOND_ARGS],
        ]);

        const events = await streamResponses(gw.baseUrl, { model: "openai/gpt-fake", input: "both", tools: [responsesTool] });
        const items = events.at(-1)!.data.response.output;
        assert.deepEqual(
          items.map((o: any) => [o.type, o.call_id, o.name, o.arguments]),
          [
            ["function_call", "call_P", "get_weather", ARGS],
            ["function_call", "call_O", "get_time", SECOND_ARGS],
          ],
        );
        assert.notEqual(items[0].id, items[1].id);
        const doneEvents = events.filter((e) => e.data.type === "response.function_call_arguments.done").map((e) => [e.data.output_index, e.data.arguments]);
        assert.deepEqual(doneEvents, [
          [0, ARGS],
          [1, SECOND_ARGS],
        ]);
        const r = await client.responses.stream({ model: "openai/gpt-fake", input: "both", tools: [responsesTool] }).finalResponse();
        assert.deepEqual(
          r.output.map((o) => (o.type === "function_call" ? o.arguments : "")),
          [ARGS, SECOND_ARGS],
        );
      });
    }

    it("Anthropic upstream: text then two tool_use blocks → indexes 0 and 1", async () => {
      anthropic.script = anthropicConversation([
        { id: "toolu_P", name: "get_weather", pieces: ARG_PIECES },
        { id: "toolu_O", name: "get_time", pieces: ['{"city":', ' "Oslo"}'] },
      ]);
      const res = await postJson(`${gw.baseUrl}/chat/completions`, {
        model: "anthropic/claude-fake-1",
        messages: [{ role: "user", content: "both" }],
        tools: [weatherTool],
        stream: true,
      });
      const deltas = parseSse(await res.text())
        .filter((e) => e.data !== "[DONE]")
        .flatMap((e) => JSON.parse(e.data).choices[0].delta.tool_calls ?? []);
      assert.deepEqual([...new Set(deltas.map((d: any) => d.index))], [0, 1]);
      assert.deepEqual(deltas.filter((d: any) => d.id).map((d: any) => [d.index, d.id]), [
        [0, "toolu_P"],
        [1, "toolu_O"],
      ]);

      const r = await client.responses.stream({ model: "anthropic/claude-fake-1", input: "both", tools: [responsesTool] }).finalResponse();
      assert.deepEqual(
        r.output.map((o) => o.type),
        ["message", "function_call", "function_call"],
      );
      assert.equal(outputText(r), "Let me check.");
      assert.deepEqual(
        r.output.flatMap((o) => (o.type === "function_call" ? [[o.call_id, o.arguments]] : [])),
        [
          ["toolu_P", ARGS],
          ["toolu_O", SECOND_ARGS],
        ],
      );
    });

    it("a tool without arguments gets {} from Anthropic", async () => {
      anthropic.script = () => ({ events: [messageStart(), ...toolUseBlock(0, "toolu_N", "now", []), ...messageEnd("tool_use", 3)] });
      const r = await client.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "now?" }], tools: [weatherTool] });
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
      const c = r.choices[0]!.message.tool_calls![0]!;
      assert.equal(c.type === "function" ? c.function.arguments : "", "{}");
    });

    it("parallel_tool_calls: false and tool_choice reach Anthropic as disable_parallel_tool_use / any", async () => {
      anthropic.script = anthropicConversation([{ id: "toolu_1", name: "get_weather", pieces: ['{"city":"x"}'] }]);
      await client.chat.completions.create({
        model: "anthropic/claude-fake-1",
        messages: [{ role: "user", content: "x" }],
        tools: [weatherTool],
        tool_choice: "required",
        parallel_tool_calls: false,
      });
      assert.deepEqual(anthropic.requests[0]!.body.tool_choice, { type: "any", disable_parallel_tool_use: true });
      await client.responses.create({ model: "anthropic/claude-fake-1", input: "x", tools: [responsesTool], tool_choice: { type: "function", name: "get_weather" } });
      assert.deepEqual(anthropic.requests[1]!.body.tool_choice, { type: "tool", name: "get_weather" });
    });
  });

  describe("bad input: 400 naming the field", () => {
    const chat = (body: Record<string, unknown>) => ({ model: "openai/gpt-fake", stream: true, ...body });
    const cases: Array<[string, string, Record<string, unknown>, string]> = [
      [
        "chat: a tool result for an unknown call id",
        "chat/completions",
        chat({ messages: [{ role: "user", content: "x" }, { role: "tool", tool_call_id: "call_zzz", content: "1" }] }),
        "messages[1].tool_call_id",
      ],
      ["chat: tool parameters not an object", "chat/completions", chat({ messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: [] } }] }), "tools[0].function.parameters"],
      [
        "chat: tool schema of the wrong type",
        "chat/completions",
        chat({ messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: { type: "string" } } }] }),
        "tools[0].function.parameters.type",
      ],
      [
        "chat: tool schema property that is not a schema",
        "chat/completions",
        chat({ messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { a: 1 } } } }] }),
        "tools[0].function.parameters.properties.a",
      ],
      ["chat: tool without a name", "chat/completions", chat({ messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: {} }] }), "tools[0].function.name"],
      ["chat: tool_choice names no tool", "chat/completions", chat({ messages: [{ role: "user", content: "x" }], tools: [weatherTool], tool_choice: { type: "function", function: { name: "nope" } } }), "tool_choice"],
      ["chat: bad tool call in an assistant message", "chat/completions", chat({ messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f" } }] }] }), "messages[0].tool_calls[0].function.arguments"],
      [
        "Responses: a tool result for an unknown call id",
        "responses",
        { model: "openai/gpt-fake", input: [{ type: "function_call_output", call_id: "call_zzz", output: "1" }] },
        "input[0].call_id",
      ],
      ["Responses: unknown item type", "responses", { model: "openai/gpt-fake", input: [{ type: "computer_call_output", call_id: "c" }] }, "input[0].type"],
      [
        "Responses: tool schema of the wrong type",
        "responses",
        { model: "openai/gpt-fake", input: "x", tools: [{ type: "function", name: "f", parameters: { type: "array" } }] },
        "tools[0].parameters.type",
      ],
    ];
    for (const [name, route, body, param] of cases) {
      it(name, async () => {
        const res = await postJson(`${gw.baseUrl}/${route}`, body);
        const j = (await res.json()) as { error: { param: string; message: string } };
        assert.equal(res.status, 400, JSON.stringify(j));
        assert.equal(j.error.param, param, j.error.message);
        assert.ok(j.error.message.includes(param), j.error.message);
        assert.equal(openai.requests.length, 0, "nothing reached the upstream");
      });
    }

    it("Anthropic: tool call arguments that are not a JSON object", async () => {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, {
        model: "anthropic/claude-fake-1",
        messages: [
          { role: "user", content: "x" },
          { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "[1,2" } }] },
          { role: "tool", tool_call_id: "c1", content: "r" },
        ],
      });
      const j = (await res.json()) as { error: { param: string } };
      assert.equal(res.status, 400);
      assert.equal(j.error.param, "messages[1].tool_calls[0].function.arguments");
      assert.equal(anthropic.requests.length, 0);
    });
  });
});
