/**
 * Reasoning on every shape and door, offline: `local/echo` reasons when
 * asked, and the same reasoning arrives as chat `reasoning_content`, as a
 * Responses `reasoning` item (every event checked against OpenAI's schemas),
 * as an Anthropic `thinking` block with its signature, and as ReasoningDelta
 * chunks on gRPC; `reasoning_tokens` reach usage. Metrics count the request
 * under its shape.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";

const PROMPT = "one two three";

describe("reasoning on every shape", () => {
  let gw: TestGateway;
  let expected = "";
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it("gRPC: ReasoningDelta chunks before the answer, with a signature", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const r = await readAll(client.generate(generateRequest("local/echo", PROMPT, { reasoning: { effort: "low", budgetTokens: 0, summary: "", disabled: false } })));
      assert.equal(r.error, undefined);
      const reasoning = r.chunks.flatMap((c) => (c.payload?.$case === "reasoning" ? [c.payload.value] : []));
      expected = reasoning.map((d) => d.text).join("");
      assert.ok(expected.length > 0);
      assert.ok(reasoning.some((d) => d.signature), "a signature");
      const firstText = r.chunks.findIndex((c) => c.payload?.$case === "text");
      const lastReasoning = r.chunks.map((c) => c.payload?.$case).lastIndexOf("reasoning");
      assert.ok(lastReasoning < firstText, "reasoning comes before the answer");
      const usage = r.chunks.find((c) => c.payload?.$case === "usage");
      assert.ok(usage?.payload?.$case === "usage" && usage.payload.value.reasoningTokens > 0);
    } finally {
      client.close();
    }
  });

  it("chat: delta.reasoning_content, then the answer; reasoning_tokens in usage", async () => {
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: PROMPT }], stream: true, stream_options: { include_usage: true }, reasoning_effort: "low" });
    let reasoning = "";
    let text = "";
    let reasoningTokens = 0;
    for await (const c of stream) {
      assertSchema("CreateChatCompletionStreamResponse", c);
      const d = c.choices[0]?.delta as { reasoning_content?: string; content?: string } | undefined;
      reasoning += d?.reasoning_content ?? "";
      text += d?.content ?? "";
      reasoningTokens = c.usage?.completion_tokens_details?.reasoning_tokens ?? reasoningTokens;
    }
    assert.equal(reasoning, expected);
    assert.equal(text, PROMPT);
    assert.ok(reasoningTokens > 0);
  });

  it("Responses: a reasoning item before the message, every event valid", async () => {
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    const stream = await client.responses.create({ model: "local/echo", input: PROMPT, reasoning: { effort: "low" }, stream: true });
    const types: string[] = [];
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      assertSchema("ResponseStreamEvent", e);
      types.push(e.type);
      if (e.type === "response.completed") final = e.response;
    }
    assert.ok(types.includes("response.reasoning_text.delta"));
    assert.ok(final);
    assert.deepEqual(final.output.map((o) => o.type), ["reasoning", "message"]);
    const item = final.output[0] as OpenAI.Responses.ResponseReasoningItem;
    assert.equal((item.content ?? []).map((c) => c.text).join(""), expected);
    assert.ok((final.usage?.output_tokens_details.reasoning_tokens ?? 0) > 0);
  });

  it("Anthropic: a thinking block with its signature, then the text", async () => {
    const client = new Anthropic({ baseURL: gw.origin, apiKey: "unused", maxRetries: 0 });
    const m = await client.messages.stream({ model: "local/echo", max_tokens: 200, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: PROMPT }] }).finalMessage();
    assert.deepEqual(m.content.map((b) => b.type), ["thinking", "text"]);
    const thinking = m.content[0]!;
    assert.ok(thinking.type === "thinking" && thinking.thinking === expected && thinking.signature.length > 0);
  });

  it("metrics count each request under its shape", async () => {
    const text = await (await fetch(`${gw.origin}/metrics`)).text();
    for (const shape of ["openai", "anthropic", "grpc"]) assert.match(text, new RegExp(`spillway_requests_total\\{[^}]*shape="${shape}"`), shape);
  });
});
