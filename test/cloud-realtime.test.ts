/**
 * Bedrock and Azure models as the text model of realtime voice profiles: a
 * realtime response streams the provider's text (and a Bedrock tool call
 * becomes a function_call item), the same protocol whatever the provider.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { azureChunk, azureUsage, startFakeAzure, type FakeAzure } from "./helpers/fake-azure.js";
import { messageEnd, messageStart, startFakeBedrock, textAnswer, toolBlock, type FakeBedrock } from "./helpers/fake-bedrock.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

const BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";

describe("Bedrock and Azure behind realtime profiles", () => {
  let bedrock: FakeBedrock;
  let azure: FakeAzure;
  let tg: TestGateway;
  before(async () => {
    bedrock = await startFakeBedrock();
    azure = await startFakeAzure();
    tg = await startTestGateway({
      providers: {
        bedrock: { type: "bedrock", region: "us-east-1", accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", baseUrl: bedrock.baseUrl, models: [BEDROCK_MODEL] },
        azure: { type: "azure", baseUrl: azure.endpoint, apiKey: "azure-key-1", apiVersion: "2024-10-21", models: ["gpt4o-prod"] },
      },
      realtime: {
        profiles: {
          "acme/bedrock-voice": { stt: "local/stt", text: `bedrock/${BEDROCK_MODEL}`, tts: "local/tts" },
          "acme/azure-voice": { stt: "local/stt", text: "azure/gpt4o-prod", tts: "local/tts" },
        },
      },
    });
  });
  after(async () => {
    await tg.close();
    await bedrock.close();
    await azure.close();
  });

  async function ask(profile: string, text: string, tools: unknown[] = []): Promise<Record<string, any>> {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, profile));
    try {
      await c.next("session.created");
      c.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"], tools, tool_choice: "auto" } });
      await c.next("session.updated");
      c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
      c.send({ type: "response.create" });
      return (await c.next("response.done")).response as Record<string, any>;
    } finally {
      await c.close();
    }
  }

  it("Bedrock: text, then a tool call as a function_call item", async () => {
    bedrock.script = () => ({ frames: textAnswer(["Hello", " from Bedrock"]) });
    const r = await ask("acme/bedrock-voice", "hi");
    assert.equal(r["status"], "completed");
    assert.equal(r["output"][0].content[0].text, "Hello from Bedrock");
    bedrock.script = () => ({ frames: [messageStart(), ...toolBlock(0, "tu_9", "get_weather", ['{"city":', '"Lima"}']), ...messageEnd("tool_use", [9, 4])] });
    const tool = { type: "function", name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } } };
    const t = await ask("acme/bedrock-voice", "weather in Lima?", [tool]);
    const call = t["output"].find((o: Record<string, unknown>) => o["type"] === "function_call");
    assert.deepEqual([call?.name, JSON.parse(call?.arguments ?? "{}")], ["get_weather", { city: "Lima" }]);
  });

  it("Azure: text streamed into the response", async () => {
    azure.script = () => ({ chunks: [azureChunk({ role: "assistant", content: "Hi" }), azureChunk({ content: " from Azure" }), azureChunk({}, "stop"), azureUsage(5, 3)] });
    const r = await ask("acme/azure-voice", "hi");
    assert.equal(r["status"], "completed");
    assert.equal(r["output"][0].content[0].text, "Hi from Azure");
  });
});
