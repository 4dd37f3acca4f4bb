/**
 * The Gemini provider (Google AI Studio) end to end: the official `openai`
 * SDK talks to Spillway, Spillway talks to a fake Gemini API speaking the
 * real wire format (SSE JSON with CRLF separators, no end marker). Covers
 * request translation, chat (streamed and not), completions, Responses,
 * whole function calls, a tool-result round trip, images, every error
 * status, mid-stream errors, truncation, client aborts and fallback.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import OpenAI from "openai";
import { chunk, startFakeGemini, textAnswer, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { outputText, streamResponses, TEXT_SEQUENCE, typeSequence } from "./helpers/responses.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";

const MODEL = "gemini/gemini-fake-1";
const STREAM_PATH = "/v1beta/models/gemini-fake-1:streamGenerateContent?alt=sse";

describe("gemini provider (AI Studio)", () => {
  let fake: FakeGemini;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeGemini();
    fake.apiKey = "AIza-test";
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "AIza-test" } },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
    fake.requests.length = 0;
  });

  it("streams a chat completion in order, usage and finish last; the upstream request is a proper Gemini call", async () => {
    fake.script = () => ({ chunks: textAnswer(["Hel", "lo", " there"], [12, 3]) });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "again" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 64,
      stop: ["END"],
      user: "user-42",
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
    assert.deepEqual(chunks.flatMap((c) => (c.choices[0]?.delta.content ? [c.choices[0].delta.content] : [])), ["Hel", "lo", " there"]);
    const withFinish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(withFinish.length, 1);
    assert.equal(withFinish[0]!.choices[0]!.finish_reason, "stop");
    const last = chunks.at(-1)!;
    assert.deepEqual([last.usage!.prompt_tokens, last.usage!.completion_tokens, last.usage!.total_tokens], [12, 3, 15]);
    assert.ok(chunks.indexOf(withFinish[0]!) >= chunks.findLastIndex((c) => c.choices[0]?.delta.content), "finish after the last text");

    const req = fake.requests[0]!;
    assert.equal(req.url, STREAM_PATH);
    assert.equal(req.headers["x-goog-api-key"], "AIza-test");
    assert.equal(req.headers["authorization"], undefined);
    assert.deepEqual(req.body, {
      contents: [
        { role: "user", parts: [{ text: "hi" }] },
        { role: "model", parts: [{ text: "hello" }] },
        { role: "user", parts: [{ text: "again" }] },
      ],
      systemInstruction: { parts: [{ text: "You are terse." }] },
      generationConfig: { maxOutputTokens: 64, temperature: 0.2, topP: 0.9, stopSequences: ["END"] },
    });
  });

  it("non-streamed chat: one message, MAX_TOKENS → length, usage with reasoning and cached tokens", async () => {
    fake.script = () => ({
      chunks: [chunk([{ text: "cut" }]), chunk([{ text: " short" }], "MAX_TOKENS", usage(20, 2, { thoughts: 5, cached: 8 }))],
    });
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], max_completion_tokens: 2 });
    assertSchema("CreateChatCompletionResponse", r);
    assert.equal(r.choices[0]!.message.content, "cut short");
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage!.prompt_tokens, 20);
    assert.equal(r.usage!.completion_tokens, 7, "thoughts count as output, as OpenAI counts reasoning");
    assert.equal(r.usage!.total_tokens, 27);
    assert.equal(r.usage!.prompt_tokens_details?.cached_tokens, 8);
    assert.equal(r.usage!.completion_tokens_details?.reasoning_tokens, 5);
  });

  it("serves legacy completions from a prompt", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "say hi" });
    assert.equal(r.choices[0]!.text, "Hello from Gemini");
    assert.deepEqual(fake.requests[0]!.body.contents, [{ role: "user", parts: [{ text: "say hi" }] }]);
  });

  it("Responses: streamed events valid and in order; instructions become systemInstruction", async () => {
    const events = await streamResponses(gw.baseUrl, { model: MODEL, input: "hi", instructions: "be kind" });
    assert.deepEqual(typeSequence(events), TEXT_SEQUENCE);
    assert.deepEqual(fake.requests[0]!.body.systemInstruction, { parts: [{ text: "be kind" }] });
    const runner = client.responses.stream({ model: MODEL, input: [{ role: "user", content: "hi" }], max_output_tokens: 50 });
    const final = await runner.finalResponse();
    assert.equal(outputText(final), "Hello from Gemini");
    assert.equal(final.usage!.input_tokens, 10);
    assert.equal(fake.requests[1]!.body.generationConfig.maxOutputTokens, 50);
  });

  it("chat: thought parts arrive as reasoning_content, streamed and not; a lone signature adds nothing", async () => {
    const answer = () => [chunk([{ text: "Hmm,", thought: true }]), chunk([{ text: " yes", thought: true }]), chunk([{ text: "Yes.", thoughtSignature: "c2ln" }], "STOP", usage(4, 1, { thoughts: 6 }))];
    fake.script = () => ({ chunks: answer() });
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "?" }], stream: true, reasoning_effort: "high" });
    const deltas = parseSse(await res.text())
      .filter((e) => e.data !== "[DONE]")
      .map((e) => JSON.parse(e.data).choices[0]?.delta ?? {});
    assert.deepEqual(deltas.flatMap((d) => (d.reasoning_content ? [d.reasoning_content] : [])), ["Hmm,", " yes"]);
    assert.deepEqual(deltas.flatMap((d) => (d.content ? [d.content] : [])), ["Yes."]);
    fake.script = () => ({ chunks: answer() });
    const r = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "?" }], reasoning_effort: "high" });
    const j = (await r.json()) as { choices: Array<{ message: { content: string; reasoning_content?: string } }>; usage: { completion_tokens_details: { reasoning_tokens: number } } };
    assert.equal(j.choices[0]!.message.reasoning_content, "Hmm, yes");
    assert.equal(j.choices[0]!.message.content, "Yes.");
    assert.equal(j.usage.completion_tokens_details.reasoning_tokens, 6);
  });

  it("Responses: thought parts arrive as a reasoning item with summary text, before the message", async () => {
    fake.script = () => ({
      chunks: [chunk([{ text: "Considering", thought: true }]), chunk([{ text: " it", thought: true }]), ...textAnswer(["Yes."], [4, 1])],
    });
    const events = await streamResponses(gw.baseUrl, { model: MODEL, input: "?", reasoning: { effort: "medium", summary: "auto" } });
    const deltas = events.filter((e) => e.data.type === "response.reasoning_summary_text.delta").map((e) => e.data.delta);
    assert.deepEqual(deltas, ["Considering", " it"]);
    const final = events.at(-1)!.data.response;
    assert.deepEqual(final.output.map((o: { type: string }) => o.type), ["reasoning", "message"]);
    assert.equal(final.output[0].summary[0].text, "Considering it");
    assert.equal(final.output[1].content[0].text, "Yes.");
    assert.deepEqual(fake.requests[0]!.body.generationConfig.thinkingConfig, { includeThoughts: true, thinkingBudget: 8192 });
  });

  it("lists the upstream's generateContent models", async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes(MODEL), ids.join(","));
    assert.ok(!ids.includes("gemini/embedding-fake"), "models without generateContent are left out");
    const ready = (await (await fetch(`${gw.origin}/readyz`)).json()) as { providers: Array<{ name: string; state: string }> };
    assert.deepEqual(ready.providers.find((p) => p.name === "gemini"), { name: "gemini", state: "ok", unavailable: [] });
  });

  describe("tools", () => {
    const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: {
            type: "object",
            properties: { city: { type: "string" }, unit: { type: ["string", "null"], enum: ["c", "f"] } },
            required: ["city", "ghost"],
            additionalProperties: false,
          },
        },
      },
      { type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } },
    ];

    it("whole function calls stream as tool-call deltas with their own index and id; finish_reason tool_calls", async () => {
      fake.script = () => ({
        chunks: [
          chunk([{ text: "Checking." }]),
          chunk([{ functionCall: { name: "get_weather", args: { city: "Paris" } } }]),
          chunk([{ functionCall: { name: "get_weather", args: { city: "Rome", unit: "c" } } }, { functionCall: { name: "now", args: {} } }], "STOP", usage(30, 12)),
        ],
      });
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "weather?" }], tools, tool_choice: "auto", stream: true });
      const calls = new Map<number, { id: string; name: string; args: string }>();
      let finish: string | null | undefined;
      let text = "";
      for await (const c of stream) {
        const ch = c.choices[0];
        if (!ch) continue;
        text += ch.delta.content ?? "";
        for (const t of ch.delta.tool_calls ?? []) {
          const cur = calls.get(t.index) ?? { id: "", name: "", args: "" };
          if (t.id) cur.id = t.id;
          if (t.function?.name) cur.name = t.function.name;
          cur.args += t.function?.arguments ?? "";
          calls.set(t.index, cur);
        }
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      assert.equal(text, "Checking.");
      assert.equal(finish, "tool_calls");
      assert.deepEqual([...calls.keys()], [0, 1, 2]);
      assert.deepEqual([...calls.values()].map((c) => [c.name, JSON.parse(c.args)]), [
        ["get_weather", { city: "Paris" }],
        ["get_weather", { city: "Rome", unit: "c" }],
        ["now", {}],
      ]);
      const ids = [...calls.values()].map((c) => c.id);
      assert.ok(ids.every((id) => /^call_[0-9a-f]{32}$/.test(id)), ids.join(","));
      assert.equal(new Set(ids).size, 3);

      const body = fake.requests[0]!.body;
      assert.deepEqual(body.tools, [
        {
          functionDeclarations: [
            {
              name: "get_weather",
              description: "Weather in a city",
              parameters: {
                type: "OBJECT",
                properties: { city: { type: "STRING" }, unit: { type: "STRING", nullable: true, enum: ["c", "f"], format: "enum" } },
                required: ["city"],
              },
            },
            { name: "now" },
          ],
        },
      ]);
      assert.deepEqual(body.toolConfig, { functionCallingConfig: { mode: "AUTO" } });
    });

    it("a forced tool is mode ANY with allowedFunctionNames", async () => {
      fake.script = () => ({ chunks: [chunk([{ functionCall: { name: "now", args: {} } }], "STOP", usage(3, 1))] });
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "time?" }], tools, tool_choice: { type: "function", function: { name: "now" } } });
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
      assert.equal((r.choices[0]!.message.tool_calls![0] as { function: { name: string } }).function.name, "now");
      assert.deepEqual(fake.requests[0]!.body.toolConfig, { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["now"] } });
    });

    it("tool results go back as functionResponse parts with the function's name and an object response, one user turn per step", async () => {
      fake.script = () => ({ chunks: textAnswer(["Paris 20C, Rome 25C"]) });
      const r = await client.chat.completions.create({
        model: MODEL,
        tools,
        messages: [
          { role: "user", content: "weather in Paris and Rome?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
              { id: "call_b", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: "tool", tool_call_id: "call_a", content: '{"temp":20}' },
          { role: "tool", tool_call_id: "call_b", content: "25C and sunny" },
        ],
      });
      assert.equal(r.choices[0]!.message.content, "Paris 20C, Rome 25C");
      assert.deepEqual(fake.requests[0]!.body.contents, [
        { role: "user", parts: [{ text: "weather in Paris and Rome?" }] },
        {
          role: "model",
          parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }, { functionCall: { name: "get_weather", args: { city: "Rome" } } }],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_weather", response: { temp: 20 } } },
            { functionResponse: { name: "get_weather", response: { output: "25C and sunny" } } },
          ],
        },
      ]);
    });

    it("Gemini 3: a replayed call whose signature the client could not keep gets Google's stand-in signature", async () => {
      fake.script = () => ({ chunks: textAnswer(["ok"]) });
      const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
        { role: "user", content: "now?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_n", type: "function", function: { name: "now", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "call_n", content: "noon" },
      ];
      await client.chat.completions.create({ model: "gemini/gemini-3-flash-preview", tools, messages });
      await client.chat.completions.create({ model: MODEL, tools, messages });
      assert.deepEqual(fake.requests[0]!.body.contents[1].parts, [{ functionCall: { name: "now", args: {} }, thoughtSignature: "skip_thought_signature_validator" }]);
      assert.deepEqual(fake.requests[1]!.body.contents[1].parts, [{ functionCall: { name: "now", args: {} } }], "older models get none");
    });

    it("the Responses API round trip: function_call items and their outputs", async () => {
      fake.script = () => ({ chunks: [chunk([{ functionCall: { name: "now", args: {} } }], "STOP", usage(3, 1))] });
      const first = await client.responses.create({ model: MODEL, input: "time?", tools: [{ type: "function", name: "now", parameters: { type: "object", properties: {} }, strict: false }] });
      const call = first.output.find((o) => o.type === "function_call");
      assert.ok(call && call.type === "function_call");
      assert.equal(call.name, "now");
      fake.script = () => ({ chunks: textAnswer(["It is noon."]) });
      const second = await client.responses.create({
        model: MODEL,
        input: [{ role: "user", content: "time?" }, call, { type: "function_call_output", call_id: call.call_id, output: "12:00" }],
      });
      assert.equal(second.output_text, "It is noon.");
      assert.deepEqual(fake.requests[1]!.body.contents.slice(1), [
        { role: "model", parts: [{ functionCall: { name: "now", args: {} } }] },
        { role: "user", parts: [{ functionResponse: { name: "now", response: { output: "12:00" } } }] },
      ]);
    });
  });

  it("images in: data: URLs become inlineData, https URLs fileData", async () => {
    await client.chat.completions.create({
      model: MODEL,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          ],
        },
      ],
    });
    assert.deepEqual(fake.requests[0]!.body.contents, [
      {
        role: "user",
        parts: [
          { text: "what is this?" },
          { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
          { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/cat.jpg" } },
        ],
      },
    ]);
  });

  it("JSON-schema output from chat response_format and Responses text.format; reasoning_effort → thinkingConfig", async () => {
    fake.script = () => ({ chunks: textAnswer(['{"ok":', "true}"]) });
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "ok?" }],
      response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } },
      reasoning_effort: "low",
    });
    assert.deepEqual(JSON.parse(r.choices[0]!.message.content!), { ok: true });
    assert.deepEqual(fake.requests[0]!.body.generationConfig, {
      responseMimeType: "application/json",
      responseSchema: { type: "OBJECT", properties: { ok: { type: "BOOLEAN" } }, required: ["ok"] },
      thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 },
    });
    const resp = await client.responses.create({ model: MODEL, input: "ok?", text: { format: { type: "json_schema", name: "answer", schema, strict: true } } });
    assert.deepEqual(JSON.parse(resp.output_text), { ok: true });
    assert.deepEqual(fake.requests[1]!.body.generationConfig.responseSchema, { type: "OBJECT", properties: { ok: { type: "BOOLEAN" } }, required: ["ok"] });
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "json" }], response_format: { type: "json_object" } });
    assert.deepEqual(fake.requests[2]!.body.generationConfig, { responseMimeType: "application/json" });
  });

  it("content Gemini cannot take is a 400 naming the field", async () => {
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: MODEL,
      messages: [{ role: "user", content: [{ type: "text", text: "x" }, { type: "image_url", image_url: { url: "ftp://example.com/a.png" } }] }],
    });
    assert.equal(res.status, 400);
    const j = (await res.json()) as { error: { message: string; param: string } };
    assert.equal(j.error.param, "messages[0].content[1]");
    assert.equal(fake.requests.length, 0);
  });

  it("a prompt blocked by a safety filter finishes content_filter", async () => {
    fake.script = () => ({ chunks: [{ promptFeedback: { blockReason: "SAFETY" }, usageMetadata: usage(5, 0) }] });
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] });
    assert.equal(r.choices[0]!.finish_reason, "content_filter");
    fake.script = () => ({ chunks: [chunk([{ text: "Once upon" }]), chunk([], "RECITATION", usage(5, 2))] });
    const r2 = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] });
    assert.equal(r2.choices[0]!.finish_reason, "content_filter");
    assert.equal(r2.choices[0]!.message.content, "Once upon");
  });

  describe("errors before the stream keep a meaningful status", () => {
    const cases: Array<[number, string, number]> = [
      [400, "INVALID_ARGUMENT", 400],
      [403, "PERMISSION_DENIED", 403],
      [404, "NOT_FOUND", 404],
      [429, "RESOURCE_EXHAUSTED", 429],
      [500, "INTERNAL", 502],
      [503, "UNAVAILABLE", 502],
      [504, "DEADLINE_EXCEEDED", 504],
      [401, "UNAUTHENTICATED", 401],
    ];
    for (const [upstream, name, status] of cases) {
      it(`${name} (${upstream}) → ${status}`, async () => {
        const message = `fake ${name.toLowerCase()}`;
        fake.script = () => ({ status: upstream, errorMessage: message, headers: { "retry-after": "7" } });
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
        assert.equal(res.status, status);
        const j = (await res.json()) as { error: { message: string } };
        assert.ok(j.error.message.includes(message), j.error.message);
        if (status === 429) assert.equal(res.headers.get("retry-after"), "7");
      });
    }

    it("an invalid API key (Google's 400 API_KEY_INVALID) → 401", async () => {
      const bad = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "wrong" } } });
      try {
        const res = await postJson(`${bad.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
        assert.equal(res.status, 401);
        assert.match(((await res.json()) as { error: { message: string } }).error.message, /API key not valid/);
      } finally {
        await bad.close();
      }
    });

    it("a 429 without Retry-After uses the body's RetryInfo", async () => {
      fake.script = () => ({ status: 429, errorMessage: "quota", errorDetails: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "12s" }] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), "12");
    });

    it("an error event before any content is an error status, not a stream", async () => {
      fake.script = () => ({ chunks: [{ error: { code: 503, message: "The model is overloaded.", status: "UNAVAILABLE" } }] });
      const res = await postJson(`${gw.baseUrl}/responses`, { model: MODEL, input: "x", stream: true });
      assert.equal(res.status, 502);
    });
  });

  describe("failures mid-stream are in-band, never a silent truncation", () => {
    const broken = (): unknown[] => [chunk([{ text: "partial" }]), { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } }];

    it("chat: the content, then an error event naming the upstream's error", async () => {
      fake.script = () => ({ chunks: broken() });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.ok(!events.includes("[DONE]"));
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "partial");
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "upstream_error");
      assert.match(err.message, /An internal error has occurred/);
    });

    it("a bare JSON error object in the stream (no data: framing) is an in-band error too", async () => {
      fake.script = () => ({
        chunks: [chunk([{ text: "partial" }]), JSON.stringify({ error: { code: 429, message: "Resource has been exhausted", status: "RESOURCE_EXHAUSTED" } })],
        delayMs: 20,
      });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "partial");
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "rate_limit_exceeded");
      assert.match(err.message, /Resource has been exhausted/);
    });

    it("Responses: error then response.failed; the SDK sees them", async () => {
      fake.script = () => ({ chunks: broken() });
      const stream = await client.responses.create({ model: MODEL, input: "x", stream: true });
      const seen: string[] = [];
      for await (const e of stream) seen.push(e.type);
      assert.deepEqual(seen.slice(-2), ["error", "response.failed"]);
    });

    it("a body that ends without a finishReason fails as truncated", async () => {
      fake.script = () => ({ chunks: [chunk([{ text: "half" }]), chunk([{ text: " of it" }], undefined, usage(3, 2))] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "half");
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "upstream_truncated");
      assert.match(err.message, /finishReason/);
    });

    it("a socket that dies mid-stream is an in-band error", async () => {
      fake.script = () => ({ chunks: textAnswer(["a", "b", "c", "d"]), destroyAfter: 2, delayMs: 30 });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.ok(!events.includes("[DONE]"));
      assert.equal(events.slice(0, 2).map((e) => JSON.parse(e).choices[0].delta.content).join(""), "ab");
      assert.match(JSON.parse(events.at(-1)!).error.message, /broke off/);
    });

    it("a malformed function call fails instead of passing off an empty answer", async () => {
      fake.script = () => ({ chunks: [chunk([], "MALFORMED_FUNCTION_CALL", usage(3, 0))] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 502);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /MALFORMED_FUNCTION_CALL/);
    });
  });

  it("bytes without content are life: a long wait with keep-alives is served, silence times out", async () => {
    const slow = await startTestGateway({
      limits: { timeoutMs: 400, idleTimeoutMs: 400 },
      routing: { maxAttempts: 1 },
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "AIza-test" } },
    });
    try {
      // 1 s of SSE comments and content-less chunks (100 ms apart) before the first token, with 400 ms timeouts.
      const idle = Array.from({ length: 10 }, (_, i) => (i % 2 ? ": keep-alive\r\n\r\n" : chunk([], undefined, usage(3, 0))));
      fake.script = () => ({ chunks: [...idle, ...textAnswer(["thought", " through"])], delayMs: 100 });
      const c = new OpenAI({ baseURL: slow.baseUrl, apiKey: "unused", maxRetries: 0 });
      const stream = await c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      let text = "";
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? "";
      assert.equal(text, "thought through");

      fake.script = () => ({ chunks: [...idle.slice(0, 2), ...textAnswer(["never"])], delayMs: 100, stallAfter: 2 });
      const res = await postJson(`${slow.baseUrl}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 504);
    } finally {
      await slow.close();
    }
  });

  it("a client that disconnects mid-stream aborts the upstream request", async () => {
    fake.script = () => ({ chunks: textAnswer(Array.from({ length: 200 }, (_, i) => `w${i} `)), delayMs: 20 });
    const aborted = fake.nextAbort();
    const res = await postJson(`${gw.baseUrl}/responses`, { model: MODEL, input: "x", stream: true });
    let deltas = 0;
    await readSse(res, (e) => (e.event === "response.output_text.delta" && ++deltas >= 3 ? "stop" : undefined));
    const rec = await aborted;
    assert.ok(rec.abortedAt !== undefined);
    assert.equal(rec.url, STREAM_PATH);
  });
});

describe("gemini provider: retries, fallbacks, keys, non-streamed upstream", () => {
  it("a 503 before the first byte falls back to another provider; the client sees one clean stream", async () => {
    const failing = await startFakeGemini(() => ({ status: 503, errorMessage: "The model is overloaded." }));
    const healthy = await startFakeGemini(() => ({ chunks: textAnswer(["from", " backup"]) }));
    const gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000, fallbacks: { [MODEL]: ["backup/gemini-fake-1"] } },
      providers: {
        gemini: { type: "gemini", baseUrl: failing.baseUrl, apiKey: "k1" },
        backup: { type: "gemini", baseUrl: healthy.baseUrl, apiKey: "k2" },
      },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], stream: true });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      assert.equal(text, "from backup");
      assert.equal(failing.requests.length, 1);
      assert.equal(healthy.requests.length, 1);
    } finally {
      await gw.close();
      await failing.close();
      await healthy.close();
    }
  });

  it("a 429's Retry-After is waited for before the retry", async () => {
    let n = 0;
    const fake = await startFakeGemini(() => (n++ === 0 ? { status: 429, errorMessage: "quota", headers: { "retry-after": "0.3" } } : {}));
    const gw = await startTestGateway({
      routing: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, breakerThreshold: 1000 },
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "k" } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "Hello from Gemini");
      assert.equal(fake.requests.length, 2);
      // The engine never retries sooner than Retry-After (300 ms), though its own backoff is 1-2 ms.
      assert.ok(fake.requests[1]!.receivedAt - fake.requests[0]!.receivedAt >= 290);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("a key Google refuses rests, and the retry uses another", async () => {
    const fake = await startFakeGemini();
    fake.apiKey = "AIza-good";
    const gw = await startTestGateway({
      routing: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, breakerThreshold: 1000 },
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKeys: [{ key: "AIza-bad" }, { key: "AIza-good" }] } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      for (let i = 0; i < 4; i++) {
        const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] });
        assert.equal(r.choices[0]!.message.content, "Hello from Gemini");
      }
      assert.ok(fake.requests.filter((r) => r.headers["x-goog-api-key"] === "AIza-bad").length <= 1, "the refused key rests");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("a baseUrl given with its version is taken as the origin", async () => {
    const fake = await startFakeGemini();
    const gw = await startTestGateway({ providers: { gemini: { type: "gemini", baseUrl: `${fake.baseUrl}/v1beta/`, apiKey: "k" } } });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      assert.equal((await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] })).choices[0]!.message.content, "Hello from Gemini");
      // A non-streamed request takes the whole answer.
      assert.equal(fake.requests[0]!.url, "/v1beta/models/gemini-fake-1:generateContent");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("streaming: false uses :generateContent and serves the same answer", async () => {
    const fake = await startFakeGemini(() => ({ chunks: [chunk([{ text: "whole" }]), chunk([{ text: " answer" }, { functionCall: { name: "f", args: { a: 1 } } }], "STOP", usage(4, 3))] }));
    const gw = await startTestGateway({ providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "k", streaming: false } } });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] });
      assert.equal(r.choices[0]!.message.content, "whole answer");
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
      assert.equal(r.usage!.total_tokens, 7);
      assert.equal(fake.requests[0]!.url, "/v1beta/models/gemini-fake-1:generateContent");
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
