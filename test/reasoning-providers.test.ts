/**
 * Reasoning streams from every provider that streams reasoning, seen
 * through the gRPC door as `ReasoningDelta` chunks: `local/echo` asked to
 * reason, OpenAI-compatible servers' `delta.reasoning_content` (DeepSeek,
 * vLLM) and `delta.reasoning` (OpenRouter, Ollama), Anthropic `thinking` /
 * `redacted_thinking` blocks, and the native Responses passthrough's
 * reasoning items (summary and text deltas, id, encrypted content); with
 * `usage.reasoning_tokens` where the upstream says, and Anthropic's
 * matched stop sequence on the finish.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Chunk, ReasoningDelta } from "../src/gen/spillway/v1/chunk.js";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { echoSignature } from "../src/providers/local/echo.js";
import { messageEnd, messageStart, redactedThinkingBlock, startFakeAnthropic, textBlock, thinkingBlock, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { chatChunk, reasoningChatEvents, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse } from "./helpers/sse.js";
import { upstreamResponses } from "./helpers/upstream-responses.js";

const reasoningOf = (chunks: Chunk[]): ReasoningDelta[] => chunks.flatMap((c) => (c.payload?.$case === "reasoning" ? [c.payload.value] : []));
const textOf = (chunks: Chunk[]): string => chunks.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join("");
const usageOf = (chunks: Chunk[]) => {
  const u = chunks.at(-2)?.payload;
  assert.ok(u?.$case === "usage", "usage comes just before the finish");
  return u.value;
};
const finishOf = (chunks: Chunk[]) => {
  const f = chunks.at(-1)?.payload;
  assert.ok(f?.$case === "finish");
  return f.value;
};
/** Index of the first chunk of `kind`. */
const firstAt = (chunks: Chunk[], kind: string): number => chunks.findIndex((c) => c.payload?.$case === kind);
const reasoning = (effort: string, budgetTokens = 0) => ({ reasoning: { effort, budgetTokens, summary: "", disabled: false } });

describe("reasoning streams through the gRPC door", () => {
  let openai: FakeUpstream;
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  before(async () => {
    openai = await startFakeOpenAi();
    anthropic = await startFakeAnthropic();
    gw = await startTestGateway({
      providers: {
        openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-up", models: ["gpt-fake"] },
        native: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-up", models: ["gpt-fake"], responsesApi: true },
        anthropic: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "sk-ant", models: ["claude-fake-1"] },
      },
    });
    client = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    client.close();
    await gw.close();
    await openai.close();
    await anthropic.close();
  });

  it("local/echo reasons on request: deterministic reasoning text and signature before the answer, reasoning_tokens in usage", async () => {
    const { chunks, error } = await readAll(client.generate(generateRequest("local/echo", "one two three", reasoning("low"))));
    assert.equal(error, undefined);
    const r = reasoningOf(chunks);
    const text = r.map((d) => d.text).join("");
    assert.equal(text, "The last user message has 3 tokens, so the answer repeats it word for word.");
    assert.equal(r.at(-1)!.signature, echoSignature(text));
    assert.ok(r.every((d) => d.index === 0 && !d.summary));
    assert.ok(firstAt(chunks, "reasoning") < firstAt(chunks, "text"), "reasoning comes before the answer");
    assert.equal(textOf(chunks), "one two three");
    const u = usageOf(chunks);
    assert.equal(u.reasoningTokens, r.length - 1);
    assert.equal(u.outputTokens, 3 + u.reasoningTokens);

    // A budget cuts the reasoning; disabled (or no reasoning asked) streams none.
    const budget = await readAll(client.generate(generateRequest("local/echo", "one two three", reasoning("", 4))));
    assert.equal(usageOf(budget.chunks).reasoningTokens, 4);
    const off = await readAll(client.generate(generateRequest("local/echo", "x", { reasoning: { effort: "high", budgetTokens: 0, summary: "", disabled: true } })));
    assert.deepEqual(reasoningOf(off.chunks), []);
    const none = await readAll(client.generate(generateRequest("local/echo", "x")));
    assert.deepEqual(reasoningOf(none.chunks), []);
    assert.equal(usageOf(none.chunks).reasoningTokens, 0);
  });

  for (const field of ["reasoning_content", "reasoning"] as const) {
    it(`OpenAI-compatible delta.${field} arrives as reasoning, reasoning_tokens from completion_tokens_details`, async () => {
      openai.script = () => ({ events: reasoningChatEvents(["Think", "ing."], ["Answer"], field, [5, 9, 7]) });
      const { chunks, error } = await readAll(client.generate(generateRequest("openai/gpt-fake", "q")));
      assert.equal(error, undefined);
      assert.deepEqual(
        reasoningOf(chunks).map((d) => [d.text, d.index, d.summary]),
        [
          ["Think", 0, false],
          ["ing.", 0, false],
        ],
      );
      assert.equal(textOf(chunks), "Answer");
      assert.ok(firstAt(chunks, "reasoning") < firstAt(chunks, "text"));
      assert.equal(usageOf(chunks).reasoningTokens, 7);
    });
  }

  it("Anthropic thinking (thinking_delta, signature_delta) and redacted_thinking blocks each become a reasoning block; stop_sequence on the finish", async () => {
    anthropic.script = () => ({
      events: [
        messageStart(12),
        ...thinkingBlock(0, ["Let me ", "think."], "sig-abc"),
        ...redactedThinkingBlock(1, "opaque-data"),
        ...textBlock(2, ["Four", " END"]),
        ...messageEnd("stop_sequence", 30, "END", 20),
      ],
    });
    const { chunks, error } = await readAll(client.generate(generateRequest("anthropic/claude-fake-1", "2+2?")));
    assert.equal(error, undefined);
    assert.deepEqual(
      reasoningOf(chunks).map((d) => ({ index: d.index, text: d.text, signature: d.signature, encrypted: d.encrypted })),
      [
        { index: 0, text: "Let me ", signature: "", encrypted: "" },
        { index: 0, text: "think.", signature: "", encrypted: "" },
        { index: 0, text: "", signature: "sig-abc", encrypted: "" },
        { index: 1, text: "", signature: "", encrypted: "opaque-data" },
      ],
    );
    assert.equal(textOf(chunks), "Four END");
    assert.equal(usageOf(chunks).reasoningTokens, 20);
    const f = finishOf(chunks);
    assert.equal(f.reason, Finish_Reason.REASON_STOP);
    assert.equal(f.stopSequence, "END");
  });

  it("the stop sequence that ended the output rides on the finish: local/echo, and vLLM's stop_reason", async () => {
    const echo = await readAll(client.generate(generateRequest("local/echo", "one two END three", { stop: ["three", "END"] })));
    assert.equal(textOf(echo.chunks), "one two");
    assert.deepEqual(finishOf(echo.chunks), { reason: Finish_Reason.REASON_STOP, stopSequence: "END" });
    const plain = await readAll(client.generate(generateRequest("local/echo", "one two")));
    assert.equal(finishOf(plain.chunks).stopSequence, "");

    const finish = chatChunk(null, {}, "stop") as { choices: Array<Record<string, unknown>> };
    finish.choices[0]!["stop_reason"] = "</answer>";
    openai.script = () => ({ events: [chatChunk("Hi"), finish, usageChunk(1, 1)] });
    const vllm = await readAll(client.generate(generateRequest("openai/gpt-fake", "q", { stop: ["</answer>"] })));
    assert.deepEqual(finishOf(vllm.chunks), { reason: Finish_Reason.REASON_STOP, stopSequence: "</answer>" });
  });

  it("Responses passthrough: summary and reasoning-text deltas, the item's id and encrypted_content, reasoning_tokens", async () => {
    const frames = upstreamResponses({
      reasoning: { id: "rs_up1", summary: ["Plan", "ning"], text: ["raw"], encrypted: "enc-123" },
      text: ["Done"],
      usage: { input: 9, output: 20, reasoning: 15 },
    });
    for (const f of frames) assertSchema("ResponseStreamEvent", JSON.parse(parseSse(f)[0]!.data));
    openai.script = () => ({ events: frames, done: false });
    const { chunks, error } = await readAll(client.generate(generateRequest("native/gpt-fake", "q")));
    assert.equal(error, undefined);
    assert.equal(openai.requests.at(-1)!.url, "/v1/responses");
    assert.deepEqual(
      reasoningOf(chunks).map((d) => ({ index: d.index, id: d.id, text: d.text, summary: d.summary, encrypted: d.encrypted })),
      [
        { index: 0, id: "rs_up1", text: "Plan", summary: true, encrypted: "" },
        { index: 0, id: "rs_up1", text: "ning", summary: true, encrypted: "" },
        { index: 0, id: "rs_up1", text: "raw", summary: false, encrypted: "" },
        { index: 0, id: "rs_up1", text: "", summary: false, encrypted: "enc-123" },
      ],
    );
    assert.equal(textOf(chunks), "Done");
    assert.equal(usageOf(chunks).reasoningTokens, 15);
  });

  it("Responses passthrough: a summary in several parts reads as paragraphs", async () => {
    const frames = upstreamResponses({ reasoning: { id: "rs_3", summaryParts: [["First", " part."], ["Second."]] }, text: ["ok"] });
    for (const f of frames) assertSchema("ResponseStreamEvent", JSON.parse(parseSse(f)[0]!.data));
    openai.script = () => ({ events: frames, done: false });
    const { chunks } = await readAll(client.generate(generateRequest("native/gpt-fake", "q")));
    assert.equal(
      reasoningOf(chunks)
        .map((d) => d.text)
        .join(""),
      "First part.\n\nSecond.",
    );
  });

  it("Responses passthrough: a reasoning item whose summary came only with output_item.done still brings it", async () => {
    const frames = upstreamResponses({ reasoning: { id: "rs_2", summary: ["Whole summary"] }, text: ["ok"] }).filter((f) => !f.includes("reasoning_summary_text.delta"));
    openai.script = () => ({ events: frames, done: false });
    const { chunks } = await readAll(client.generate(generateRequest("native/gpt-fake", "q")));
    assert.deepEqual(
      reasoningOf(chunks).map((d) => [d.text, d.summary, d.id]),
      [["Whole summary", true, "rs_2"]],
    );
  });
});
