import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import type { ToolMessage} from "@langchain/core/messages";
import { HumanMessage, type AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { openAiConversation } from "./helpers/tool-conversations.js";

/** LangChain's usage record, as far as these tests read it. */
interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

// LangChain's ChatOpenAI adds usage over the chunks of a stream: usage must
// come exactly once, in OpenAI's form (a last chunk with `choices: []`).
describe("LangChain ChatOpenAI through the gateway", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it("counts a streamed answer's usage once", async () => {
    const model = new ChatOpenAI({ model: "local/echo", apiKey: "unused", configuration: { baseURL: gw.baseUrl }, streamUsage: true, maxRetries: 0 });
    let total: AIMessageChunk | undefined;
    for await (const chunk of await model.stream("the quick brown fox")) total = total ? total.concat(chunk) : chunk;
    assert.ok(total);
    assert.equal(total.content, "the quick brown fox");
    // local/echo counts the prompt as 5 tokens and the answer as 4, as the openai SDK test shows.
    const usage = (total as unknown as { usage_metadata?: Usage }).usage_metadata;
    assert.deepEqual(
      { input: usage?.input_tokens, output: usage?.output_tokens, total: usage?.total_tokens },
      { input: 5, output: 4, total: 9 },
    );
  });

  it("reads a whole answer's usage and finish reason", async () => {
    const model = new ChatOpenAI({ model: "local/echo", apiKey: "unused", configuration: { baseURL: gw.baseUrl }, maxRetries: 0 });
    const msg = await model.invoke("one two three");
    assert.equal(msg.content, "one two three");
    assert.equal((msg as unknown as { usage_metadata?: Usage }).usage_metadata?.output_tokens, 3);
    assert.equal(msg.response_metadata["finish_reason"], "stop");
  });
});

// LangChain's own tool loop: bindTools, the model's tool_calls (streamed pieces reassembled by
// LangChain), a ToolMessage with the result, the answer — over a fake OpenAI upstream.
describe("LangChain ChatOpenAI tool calls through the gateway", () => {
  let gw: TestGateway;
  let up: FakeUpstream;
  before(async () => {
    up = await startFakeOpenAi(openAiConversation([{ id: "call_lc", name: "get_weather", pieces: ['{"ci', 'ty": "Os', 'lo"}'] }]));
    gw = await startTestGateway({ providers: { up: { type: "openai", baseUrl: up.baseUrl, apiKey: "k" } } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  const weather = tool(({ city }: { city: string }) => `rainy in ${city}`, { name: "get_weather", description: "Weather for a city", schema: z.object({ city: z.string() }) });

  for (const streaming of [false, true]) {
    it(`bindTools: tool_calls, then the ToolMessage's result in the answer (${streaming ? "streamed" : "whole"})`, async () => {
      up.requests.length = 0;
      const model = new ChatOpenAI({ model: "up/gpt-fake", apiKey: "unused", configuration: { baseURL: gw.baseUrl }, maxRetries: 0, streamUsage: true }).bindTools([weather]);
      // Streamed: LangChain's chunks (tool_call_chunks) concatenated, as its users do.
      const ask = async (m: BaseMessage[]): Promise<AIMessageChunk> => {
        if (!streaming) return model.invoke(m);
        let total: AIMessageChunk | undefined;
        for await (const c of await model.stream(m)) total = total ? total.concat(c) : c;
        return total!;
      };
      const messages: BaseMessage[] = [new HumanMessage("Weather in Oslo?")];
      const first = await ask(messages);
      assert.equal(first.tool_calls?.length, 1);
      assert.deepEqual({ name: first.tool_calls[0]!.name, args: first.tool_calls[0]!.args, id: first.tool_calls[0]!.id }, { name: "get_weather", args: { city: "Oslo" }, id: "call_lc" });
      messages.push(first);
      const result: ToolMessage = await weather.invoke(first.tool_calls[0]!);
      messages.push(result);
      const answer = await ask(messages);
      assert.equal(answer.content, "It is rainy in Oslo");
      assert.equal(up.requests.length, 2);
      assert.equal(up.requests[0]!.body.tools[0].function.name, "get_weather");
    });
  }
});
