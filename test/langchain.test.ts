import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import type { AIMessageChunk } from "@langchain/core/messages";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

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
