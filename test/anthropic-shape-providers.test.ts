/**
 * The Anthropic Messages shape over the cloud providers: the official
 * `@anthropic-ai/sdk` talks to Spillway, which talks to a fake AWS Bedrock
 * (binary event stream, SigV4 checked) and a fake Azure OpenAI: text in
 * order with usage at the end, a tool_use block with its input assembled,
 * and the tool_result round trip reaching the upstream in its own form.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { azureChunk, azureUsage, startFakeAzure, type FakeAzure } from "./helpers/fake-azure.js";
import { messageEnd, messageStart, startFakeBedrock, textAnswer, textBlock, toolBlock, type FakeBedrock } from "./helpers/fake-bedrock.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const TOOLS = [{ name: "get_weather", description: "Weather", input_schema: { type: "object" as const, properties: { city: { type: "string" } } } }];

describe("Anthropic Messages shape over Bedrock and Azure", () => {
  let bedrock: FakeBedrock;
  let azure: FakeAzure;
  let gw: TestGateway;
  let client: Anthropic;
  before(async () => {
    bedrock = await startFakeBedrock();
    azure = await startFakeAzure();
    gw = await startTestGateway({
      providers: {
        bedrock: { type: "bedrock", region: "us-east-1", accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", baseUrl: bedrock.baseUrl, models: [BEDROCK_MODEL] },
        azure: { type: "azure", baseUrl: azure.endpoint, apiKey: "azure-key-1", apiVersion: "2024-10-21", models: ["gpt4o-prod"] },
      },
    });
    client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await bedrock.close();
    await azure.close();
  });

  it("Bedrock: streamed text with usage at the end, then a tool loop", async () => {
    bedrock.script = () => ({ frames: textAnswer(["Hello", " from Bedrock"], [12, 4]) });
    const msg = await client.messages.stream({ model: `bedrock/${BEDROCK_MODEL}`, max_tokens: 100, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    assert.equal(msg.content.length, 1);
    assert.equal((msg.content[0] as { text: string }).text, "Hello from Bedrock");
    assert.equal(msg.stop_reason, "end_turn");
    assert.equal(msg.usage.input_tokens, 12);
    assert.equal(msg.usage.output_tokens, 4);
    assert.equal(bedrock.requests.at(-1)!.auth, "ok");

    bedrock.script = () => ({ frames: [messageStart(), ...textBlock(0, ["Checking."]), ...toolBlock(1, "tu_1", "get_weather", ['{"ci', 'ty":"Paris"}']), ...messageEnd("tool_use", [20, 9])] });
    const first = await client.messages.create({ model: `bedrock/${BEDROCK_MODEL}`, max_tokens: 100, tools: TOOLS, messages: [{ role: "user", content: "Weather in Paris?" }] });
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((b) => b.type === "tool_use")!;
    assert.deepEqual(use.type === "tool_use" ? [use.name, use.input] : [], ["get_weather", { city: "Paris" }]);
    bedrock.script = () => ({ frames: textAnswer(["Sunny."]) });
    const second = await client.messages.create({
      model: `bedrock/${BEDROCK_MODEL}`,
      max_tokens: 100,
      tools: TOOLS,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.type === "tool_use" ? use.id : "", content: "22°C" }] },
      ],
    });
    assert.equal((second.content[0] as { text: string }).text, "Sunny.");
    const sent = bedrock.requests.at(-1)!.body as { messages: Array<{ role: string; content: Array<Record<string, unknown>> }> };
    const result = sent.messages.at(-1)!.content.find((b) => "toolResult" in b) as { toolResult: { toolUseId: string } } | undefined;
    assert.equal(result?.toolResult.toolUseId, use.type === "tool_use" ? use.id : "", "the tool result reaches Bedrock as a toolResult block");
  });

  it("Azure: streamed text and a tool call, usage at the end", async () => {
    azure.script = () => ({ chunks: [azureChunk({ role: "assistant", content: "Hi" }), azureChunk({ content: " there" }), azureChunk({}, "stop"), azureUsage(7, 2)] });
    const msg = await client.messages.stream({ model: "azure/gpt4o-prod", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    assert.equal((msg.content[0] as { text: string }).text, "Hi there");
    assert.deepEqual([msg.usage.input_tokens, msg.usage.output_tokens], [7, 2]);
    assert.match(azure.requests.at(-1)!.url, /^\/openai\/deployments\/gpt4o-prod\/chat\/completions\?api-version=2024-10-21/);

    azure.script = () => ({
      chunks: [
        azureChunk({ role: "assistant", tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city"' } }] }),
        azureChunk({ tool_calls: [{ index: 0, function: { arguments: ':"Rome"}' } }] }),
        azureChunk({}, "tool_calls"),
        azureUsage(9, 3),
      ],
    });
    const call = await client.messages.create({ model: "azure/gpt4o-prod", max_tokens: 50, tools: TOOLS, messages: [{ role: "user", content: "Rome?" }] });
    assert.equal(call.stop_reason, "tool_use");
    const use = call.content.find((b) => b.type === "tool_use");
    assert.deepEqual(use?.type === "tool_use" ? [use.id, use.name, use.input] : [], ["call_1", "get_weather", { city: "Rome" }]);
  });
});
