/**
 * Third-party client SDKs nobody here wrote, pointed at the gateway by base
 * URL only: the Vercel AI SDK (`ai` with `@ai-sdk/openai` on the Responses API
 * and on chat completions, `@ai-sdk/anthropic` on the Messages API) and the
 * OpenAI Agents SDK (`@openai/agents`, on the Responses API and on chat
 * completions; its `RealtimeSession` on the realtime door). Each runs its own agent loop — the model asks for a tool, the
 * SDK runs it and sends the result, the model answers — streamed and whole,
 * against fake OpenAI and Anthropic upstreams speaking their real wire
 * formats, and reads usage the way its users do.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool as agentTool } from "@openai/agents";
import { RealtimeAgent, RealtimeSession } from "@openai/agents-realtime";
import { generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";
import { startFakeAnthropic, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { realtimeUrl } from "./helpers/realtime.js";
import { anthropicConversation, openAiConversation } from "./helpers/tool-conversations.js";

const PIECES = ['{"ci', 'ty": "Pa', 'ris"}'];
const OPENAI_MODEL = "up/gpt-fake";
const ANTHROPIC_MODEL = "an/claude-fake-1";

describe("third-party SDKs through the gateway", () => {
  let gw: TestGateway;
  let openai: FakeUpstream;
  let anthropic: FakeAnthropic;
  /** Cities the SDK's tool was run for, in order. */
  let ran: string[];

  before(async () => {
    openai = await startFakeOpenAi();
    anthropic = await startFakeAnthropic();
    gw = await startTestGateway({
      routing: { maxAttempts: 1 },
      providers: {
        up: { type: "openai", baseUrl: openai.baseUrl, apiKey: "k1" },
        an: { type: "anthropic", baseUrl: anthropic.baseUrl, apiKey: "k2" },
      },
      realtime: { profiles: { "agent/voice": { stt: "local/stt", text: OPENAI_MODEL, tts: "local/tts" } } },
    });
    setTracingDisabled(true);
  });
  after(async () => {
    await gw.close();
    await openai.close();
    await anthropic.close();
  });
  beforeEach(() => {
    ran = [];
    openai.requests.length = 0;
    anthropic.requests.length = 0;
    openai.script = openAiConversation([{ id: "call_1", name: "get_weather", pieces: PIECES }]);
    anthropic.script = anthropicConversation([{ id: "toolu_1", name: "get_weather", pieces: PIECES }]);
  });

  /** The tool result the fakes quote back: proves the SDK ran the tool with the reassembled arguments. */
  const weather = (city: string): string => {
    ran.push(city);
    return `sunny in ${city}`;
  };

  /** The upstream saw two requests: the question, then the question with the tool's result. */
  function assertToolRoundTrip(upstream: { requests: ReadonlyArray<{ body: any }> }): void {
    assert.equal(upstream.requests.length, 2, "one request per step of the loop");
    assert.deepEqual(ran, ["Paris"]);
    assert.match(JSON.stringify(upstream.requests[1]!.body), /sunny in Paris/);
  }

  describe("Vercel AI SDK", () => {
    const aiTools = () => ({
      get_weather: tool({ description: "Weather for a city", inputSchema: z.object({ city: z.string() }), execute: ({ city }) => Promise.resolve(weather(city)) }),
    });
    const openaiProvider = () => createOpenAI({ baseURL: gw.baseUrl, apiKey: "unused" });

    for (const api of ["responses", "chat"] as const) {
      it(`@ai-sdk/openai (${api}): streamText runs the tool loop; text and usage`, async () => {
        const p = openaiProvider();
        const result = streamText({ model: api === "chat" ? p.chat(OPENAI_MODEL) : p.responses(OPENAI_MODEL), prompt: "Weather in Paris?", tools: aiTools(), stopWhen: stepCountIs(3), maxRetries: 0 });
        let streamed = "";
        for await (const t of result.textStream) streamed += t;
        assert.equal(streamed, "It is sunny in Paris");
        assert.equal(await result.text, "It is sunny in Paris");
        const steps = await result.steps;
        assert.equal(steps.length, 2);
        assert.equal(steps[0]!.finishReason, "tool-calls");
        assert.equal(steps[1]!.finishReason, "stop");
        const usage = await result.totalUsage;
        assert.ok((usage.inputTokens ?? 0) > 0 && (usage.outputTokens ?? 0) > 0, JSON.stringify(usage));
        assertToolRoundTrip(openai);
      });

      it(`@ai-sdk/openai (${api}): generateText, whole`, async () => {
        const p = openaiProvider();
        const r = await generateText({ model: api === "chat" ? p.chat(OPENAI_MODEL) : p.responses(OPENAI_MODEL), prompt: "Weather in Paris?", tools: aiTools(), stopWhen: stepCountIs(3), maxRetries: 0 });
        assert.equal(r.text, "It is sunny in Paris");
        assert.equal(r.steps[0]!.toolCalls[0]!.toolName, "get_weather");
        assert.deepEqual(r.steps[0]!.toolCalls[0]!.input, { city: "Paris" });
        assertToolRoundTrip(openai);
      });
    }

    it("@ai-sdk/anthropic (Messages API): streamText runs the tool loop over an Anthropic upstream", async () => {
      const p = createAnthropic({ baseURL: `${gw.origin}/v1`, apiKey: "unused" });
      const result = streamText({ model: p(ANTHROPIC_MODEL), prompt: "Weather in Paris?", tools: aiTools(), stopWhen: stepCountIs(3), maxOutputTokens: 256, maxRetries: 0 });
      let streamed = "";
      for await (const t of result.textStream) streamed += t;
      assert.match(streamed, /It is sunny in Paris$/);
      const usage = await result.totalUsage;
      assert.ok((usage.inputTokens ?? 0) > 0 && (usage.outputTokens ?? 0) > 0, JSON.stringify(usage));
      assertToolRoundTrip(anthropic);
    });

    it("@ai-sdk/openai: an unknown model is an APICallError with the gateway's 404", async () => {
      const err = await generateText({ model: openaiProvider().responses("nosuch/model"), prompt: "x", maxRetries: 0 }).then(
        () => assert.fail("expected an error"),
        (e: unknown) => e as { statusCode?: number; message: string },
      );
      assert.equal(err.statusCode, 404);
      assert.match(err.message, /nosuch\/model/);
    });
  });

  describe("OpenAI Agents SDK", () => {
    const agent = () =>
      new Agent({
        name: "Weather",
        instructions: "Answer with the weather.",
        model: OPENAI_MODEL,
        tools: [agentTool({ name: "get_weather", description: "Weather for a city", parameters: z.object({ city: z.string() }), execute: ({ city }) => weather(city) })],
      });

    before(() => setDefaultOpenAIClient(new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 })));
    after(() => setOpenAIAPI("responses"));

    it("RealtimeSession over the realtime door (local cascade): text in, the answer's audio and transcript out", async () => {
      const session = new RealtimeSession(new RealtimeAgent({ name: "Echo", instructions: "Repeat." }), { transport: "websocket", model: "local/realtime" });
      let audioBytes = 0;
      session.on("audio", (e) => (audioBytes += e.data.byteLength));
      const done = new Promise<string>((resolve) => session.on("agent_end", (_ctx, _agent, text) => resolve(text)));
      await session.connect({ apiKey: "unused", url: realtimeUrl(gw.origin) });
      try {
        session.sendMessage("hello realtime world");
        assert.equal(await done, "hello realtime world");
        assert.ok(audioBytes > 0, "speech came back");
        const roles = session.history.filter((h) => h.type === "message").map((h) => (h as { role: string }).role);
        assert.deepEqual(roles, ["user", "assistant"]);
      } finally {
        session.close();
      }
    });

    it("RealtimeSession with a tool (cascade over an OpenAI upstream): the SDK runs it from the door's function call and the answer quotes it", async () => {
      const rtAgent = new RealtimeAgent({
        name: "Weather",
        instructions: "Answer with the weather.",
        tools: [agentTool({ name: "get_weather", description: "Weather for a city", parameters: z.object({ city: z.string() }), execute: ({ city }) => weather(city) })],
      });
      const session = new RealtimeSession(rtAgent, { transport: "websocket", model: "agent/voice" });
      const transcripts: string[] = [];
      session.on("agent_end", (_ctx, _agent, text) => transcripts.push(text));
      const answered = new Promise<void>((resolve) => session.on("agent_end", (_ctx, _agent, text) => text.includes("sunny") && resolve()));
      await session.connect({ apiKey: "unused", url: realtimeUrl(gw.origin, "agent/voice") });
      try {
        session.sendMessage("Weather in Paris?");
        await answered;
        assert.equal(transcripts.at(-1), "It is sunny in Paris");
        assertToolRoundTrip(openai);
        // The upstream's tool was declared from the SDK's session config.
        assert.equal(openai.requests[0]!.body.tools[0].function.name, "get_weather");
      } finally {
        session.close();
      }
    });

    for (const api of ["responses", "chat_completions"] as const) {
      it(`${api}: run() calls the tool and answers`, async () => {
        setOpenAIAPI(api);
        const result = await run(agent(), "Weather in Paris?");
        assert.equal(result.finalOutput, "It is sunny in Paris");
        assert.ok(result.state.usage.inputTokens > 0 && result.state.usage.outputTokens > 0);
        assertToolRoundTrip(openai);
      });

      it(`${api}: run({stream: true}) streams the answer's text`, async () => {
        setOpenAIAPI(api);
        const result = await run(agent(), "Weather in Paris?", { stream: true });
        let text = "";
        for await (const t of result.toTextStream()) text += t;
        await result.completed;
        assert.equal(text, "It is sunny in Paris");
        assert.equal(result.finalOutput, "It is sunny in Paris");
        assertToolRoundTrip(openai);
      });
    }
  });
});
