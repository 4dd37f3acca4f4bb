/**
 * Extended thinking inside a tool loop (src/providers/shared/thinking-turns.ts):
 * Claude refuses a request with thinking enabled whose last assistant turn
 * made tool calls without a thinking block before them — what every OpenAI
 * chat client sends, since chat cannot carry reasoning back. The Anthropic
 * and Bedrock providers leave thinking off for such a request; a client
 * that kept the signed block (the Anthropic shape, the Responses shape),
 * or a turn outside a tool loop, still thinks. Through the gateway with the
 * official SDKs against the fakes, plus the rule itself over a table.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { ContentPart, Message } from "../src/gen/spillway/v1/request.js";
import { makeMessage } from "../src/engine/requests.js";
import { toolTurnLacksThinking } from "../src/providers/shared/thinking-turns.js";
import { startFakeAnthropic, textAnswer, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeBedrock, type FakeBedrock } from "./helpers/fake-bedrock.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const CLAUDE_ON_BEDROCK = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const TOOLS: OpenAI.Chat.ChatCompletionTool[] = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }];
/** A chat client's second turn of a tool loop: the assistant's call (no reasoning: chat has no field for it) and the result. */
const chatLoop: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: "user", content: "What is it?" },
  { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }] },
  { role: "tool", tool_call_id: "call_1", content: "42" },
];

let anthropic: FakeAnthropic;
let bedrock: FakeBedrock;
let gw: TestGateway;
let chat: OpenAI;

before(async () => {
  anthropic = await startFakeAnthropic(() => ({ events: textAnswer(["It is 42."]) }));
  bedrock = await startFakeBedrock();
  gw = await startTestGateway({
    routing: { maxAttempts: 1 },
    providers: {
      anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "k", models: ["claude-fake-1"] },
      bedrock: { type: "bedrock", region: "us-east-1", baseUrl: bedrock.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", models: [CLAUDE_ON_BEDROCK] },
    },
  });
  chat = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await gw.close();
  await anthropic.close();
  await bedrock.close();
});

const anthropicBody = (): Record<string, unknown> => anthropic.requests.at(-1)!.body as Record<string, unknown>;
const bedrockThinking = (): unknown => (bedrock.requests.at(-1)!.body as { additionalModelRequestFields?: { thinking?: unknown } }).additionalModelRequestFields?.thinking;

describe("extended thinking in a tool loop", () => {
  it("anthropic: a chat client's tool loop is sent without thinking (Claude would refuse it), and answers", async () => {
    const r = await chat.chat.completions.create({ model: "anthropic/claude-fake-1", messages: chatLoop, tools: TOOLS, reasoning_effort: "high" });
    assert.equal(r.choices[0]!.message.content, "It is 42.");
    const body = anthropicBody();
    assert.equal(body["thinking"], undefined);
    const messages = body["messages"] as Array<{ role: string; content: Array<{ type: string }> }>;
    assert.deepEqual(messages.map((m) => [m.role, m.content.map((b) => b.type)]), [
      ["user", ["text"]],
      ["assistant", ["tool_use"]],
      ["user", ["tool_result"]],
    ]);
  });

  it("anthropic: outside a tool loop the same client's effort thinks", async () => {
    await chat.chat.completions.create({ model: "anthropic/claude-fake-1", messages: [{ role: "user", content: "hi" }], tools: TOOLS, reasoning_effort: "high" });
    assert.deepEqual(anthropicBody()["thinking"], { type: "enabled", budget_tokens: 4096 });
  });

  it("anthropic: a client that kept the signed thinking block (the Anthropic shape) still thinks in the loop", async () => {
    const sdk = new Anthropic({ baseURL: gw.origin, apiKey: "unused", maxRetries: 0 });
    await sdk.messages.create({
      model: "anthropic/claude-fake-1",
      max_tokens: 8000,
      thinking: { type: "enabled", budget_tokens: 2000 },
      tools: [{ name: "lookup", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: "What is it?" },
        { role: "assistant", content: [{ type: "thinking", thinking: "Look it up.", signature: "sig-1" }, { type: "tool_use", id: "toolu_1", name: "lookup", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "42" }] },
      ],
    });
    const body = anthropicBody();
    assert.deepEqual(body["thinking"], { type: "enabled", budget_tokens: 2000 });
    assert.deepEqual((body["messages"] as Array<{ content: unknown[] }>)[1]!.content[0], { type: "thinking", thinking: "Look it up.", signature: "sig-1" });
  });

  it("bedrock (Claude): the chat tool loop goes without thinking; a plain turn thinks", async () => {
    await chat.chat.completions.create({ model: `bedrock/${CLAUDE_ON_BEDROCK}`, messages: chatLoop, tools: TOOLS, reasoning_effort: "high" });
    assert.equal(bedrockThinking(), undefined);
    await chat.chat.completions.create({ model: `bedrock/${CLAUDE_ON_BEDROCK}`, messages: [{ role: "user", content: "hi" }], reasoning_effort: "high" });
    assert.deepEqual(bedrockThinking(), { type: "enabled", budget_tokens: 16384 });
  });
});

describe("toolTurnLacksThinking", () => {
  const reasoning = (signature: string, encrypted = "", id = ""): ContentPart => ({ part: { $case: "reasoning", value: { text: "t", signature, encrypted, summary: false, id } } });
  const text = (t: string): ContentPart => ({ part: { $case: "text", value: t } });
  const call = { id: "c", name: "f", arguments: "{}" };
  const user = makeMessage({ role: "user", content: "q" });
  const tool = makeMessage({ role: "tool", content: "r", toolCallId: "c" });
  const asst = (contents: ContentPart[], calls = [call], content = ""): Message => makeMessage({ role: "assistant", content, contents, toolCalls: calls });
  const signed = (r: { signature: string }): boolean => r.signature !== "";
  const cases: Array<[string, Message[], boolean]> = [
    ["no assistant turn", [user], false],
    ["a finished exchange, no tool result after it", [user, asst([], [], "a"), user], false],
    ["tool loop, the call alone", [user, asst([]), tool], true],
    ["tool loop, text before the call", [user, asst([text("let me see")]), tool], true],
    ["tool loop, a signed block first", [user, asst([reasoning("sig"), text("x")]), tool], false],
    ["tool loop, an empty text, then a signed block", [user, asst([text(""), reasoning("sig")]), tool], false],
    ["tool loop, a block without a signature", [user, asst([reasoning("")]), tool], true],
    ["tool loop, the signed block on the first of two merged assistant messages", [user, asst([reasoning("sig")], []), asst([]), tool], false],
    ["tool loop, then a user message after the results", [user, asst([]), tool, user], true],
    ["an earlier unsigned loop does not matter once a later assistant turn closed it", [user, asst([]), tool, asst([], [], "done"), user], false],
  ];
  for (const [name, messages, want] of cases) it(name, () => assert.equal(toolTurnLacksThinking(messages, signed), want));
});
