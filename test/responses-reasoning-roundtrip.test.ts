/**
 * A Responses client keeps another provider's reasoning across turns. The
 * Responses API has no field for an Anthropic thinking signature, a
 * redacted_thinking block or a Gemini thought signature, so the gateway
 * carries them in the reasoning item's `encrypted_content`
 * (src/doors/http/shapes/openai-responses/reasoning-state.ts), the field
 * such clients send back as it came. A tool loop through the official
 * openai SDK, streamed and whole: the second request the fake Anthropic /
 * Gemini receives has the signed blocks back, exactly; a stored response
 * named by `previous_response_id` carries them the same way. (OpenAI's own
 * encrypted content passing through unchanged is in responses-builder and
 * provider-fields.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { messageEnd, messageStart, redactedThinkingBlock, startFakeAnthropic, textAnswer, thinkingBlock, toolUseBlock, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { chunk, startFakeGemini, textAnswer as geminiText, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";

const TOOLS: OpenAI.Responses.Tool[] = [{ type: "function", name: "lookup", description: "look it up", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: false }];
type Input = OpenAI.Responses.ResponseInputItem;

let anthropic: FakeAnthropic;
let gemini: FakeGemini;
let gw: TestGateway;
let client: OpenAI;

before(async () => {
  anthropic = await startFakeAnthropic();
  gemini = await startFakeGemini();
  gw = await startTestGateway({
    routing: { maxAttempts: 1 },
    providers: {
      anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "k", models: ["claude-fake-1"] },
      gemini: { type: "gemini", baseUrl: gemini.baseUrl, apiKey: "k", models: ["gemini-3-fake"] },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await gw.close();
  await anthropic.close();
  await gemini.close();
});

/** One turn through the Responses API, streamed (every event checked against the schema) or whole; the response. */
async function turn(model: string, input: Input[], stream: boolean): Promise<OpenAI.Responses.Response> {
  const body = { model, input, tools: TOOLS, reasoning: { effort: "low" as const }, include: ["reasoning.encrypted_content" as const], store: false };
  if (!stream) {
    const r = await client.responses.create(body);
    assertSchema("Response", r);
    return r;
  }
  let final: OpenAI.Responses.Response | undefined;
  for await (const e of await client.responses.create({ ...body, stream: true })) {
    assertSchema("ResponseStreamEvent", e);
    if (e.type === "response.completed") final = e.response;
  }
  assert.ok(final, "response.completed came");
  return final;
}

/** The text of a response's message items (the SDK's \`output_text\` is only added to whole responses). */
const textOf = (r: OpenAI.Responses.Response): string =>
  r.output.flatMap((o) => (o.type === "message" ? o.content.map((c) => (c.type === "output_text" ? c.text : "")) : [])).join("");

/** The next turn's input as a Responses client builds it: what it sent, the output items as they came, the tool's result. */
function next(first: Input[], r: OpenAI.Responses.Response): Input[] {
  const call = r.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === "function_call");
  assert.ok(call, "the model called the tool");
  return [...first, ...(r.output as Input[]), { type: "function_call_output", call_id: call.call_id, output: "42" }];
}

for (const stream of [true, false]) {
  const how = stream ? "streamed" : "whole";
  describe(`Responses reasoning round trip (${how})`, () => {
    it("Anthropic: the thinking block's signature and a redacted_thinking block come back on the next turn, before the tool_use", async () => {
      anthropic.script = (req) =>
        (req.body as { messages: unknown[] }).messages.length === 1
          ? {
              events: [
                messageStart(12),
                ...thinkingBlock(0, ["I should ", "look it up."], "sig-EqQBCkYIBxgCKkB"),
                ...redactedThinkingBlock(1, "EmwKAhgBEgy-redacted"),
                ...toolUseBlock(2, "toolu_01", "lookup", ['{"q":', '"x"}']),
                ...messageEnd("tool_use", 30),
              ],
            }
          : { events: textAnswer(["It is 42."]) };
      const first: Input[] = [{ role: "user", content: "What is it?" }];
      const r1 = await turn("anthropic/claude-fake-1", first, stream);
      assert.deepEqual(r1.output.map((o) => o.type), ["reasoning", "reasoning", "function_call"]);
      for (const o of r1.output.slice(0, 2)) assert.match((o as OpenAI.Responses.ResponseReasoningItem).encrypted_content ?? "", /^spw1\./);
      const r2 = await turn("anthropic/claude-fake-1", next(first, r1), stream);
      assert.equal(textOf(r2), "It is 42.");
      const sent = (anthropic.requests.at(-1)!.body as { messages: Array<{ role: string; content: unknown }> }).messages;
      assert.deepEqual(sent[1], {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "I should look it up.", signature: "sig-EqQBCkYIBxgCKkB" },
          { type: "redacted_thinking", data: "EmwKAhgBEgy-redacted" },
          { type: "tool_use", id: "toolu_01", name: "lookup", input: { q: "x" } },
        ],
      });
    });

    it("Gemini 3: the thought signature on the function call comes back on it (not the stand-in signature)", async () => {
      gemini.script = (req) =>
        (req.body as { contents: unknown[] }).contents.length === 1
          ? { chunks: [chunk([{ text: "Thinking about it", thought: true }]), chunk([{ functionCall: { name: "lookup", args: { q: "x" } }, thoughtSignature: "Q2lnbmF0dXJl" }], "STOP", usage(5, 3, { thoughts: 4 }))] }
          : { chunks: geminiText(["It is 42."]) };
      const first: Input[] = [{ role: "user", content: "What is it?" }];
      const r1 = await turn("gemini/gemini-3-fake", first, stream);
      assert.deepEqual(r1.output.map((o) => o.type), ["reasoning", "function_call"]);
      await turn("gemini/gemini-3-fake", next(first, r1), stream);
      const contents = (gemini.requests.at(-1)!.body as { contents: Array<{ role: string; parts: Array<Record<string, unknown>> }> }).contents;
      const model = contents.find((c) => c.role === "model")!;
      const call = model.parts.find((p) => p["functionCall"])!;
      assert.equal(call["thoughtSignature"], "Q2lnbmF0dXJl");
    });
  });
}

describe("Responses reasoning round trip through previous_response_id (stored)", () => {
  it("Anthropic: the stored response's signed blocks are sent again when the next turn names it", async () => {
    anthropic.script = (req) =>
      (req.body as { messages: unknown[] }).messages.length === 1
        ? { events: [messageStart(12), ...thinkingBlock(0, ["Look ", "it up."], "sig-stored"), ...toolUseBlock(1, "toolu_9", "lookup", ["{}"]), ...messageEnd("tool_use", 9)] }
        : { events: textAnswer(["Done."]) };
    const r1 = await client.responses.create({ model: "anthropic/claude-fake-1", input: "What is it?", tools: TOOLS, reasoning: { effort: "low" } });
    const call = r1.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === "function_call")!;
    const r2 = await client.responses.create({ model: "anthropic/claude-fake-1", previous_response_id: r1.id, input: [{ type: "function_call_output", call_id: call.call_id, output: "42" }], tools: TOOLS, reasoning: { effort: "low" } });
    assert.equal(r2.output_text, "Done.");
    const sent = (anthropic.requests.at(-1)!.body as { messages: Array<{ role: string; content: unknown }> }).messages;
    assert.deepEqual(sent[1], {
      role: "assistant",
      content: [
        { type: "thinking", thinking: "Look it up.", signature: "sig-stored" },
        { type: "tool_use", id: "toolu_9", name: "lookup", input: {} },
      ],
    });
  });
});
