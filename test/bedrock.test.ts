/**
 * The Bedrock provider end to end: the official `openai` SDK (and the gRPC
 * door) talk to Spillway, Spillway talks to a fake Bedrock Runtime that
 * checks SigV4 signatures and answers with real binary event-stream frames
 * split across writes. The fake itself is checked against AWS's own
 * `@aws-sdk/client-bedrock-runtime`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { BedrockRuntimeClient, ConverseStreamCommand, type ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import OpenAI from "openai";
import { ResponseFormat_Type } from "../src/gen/spillway/v1/request.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { applyEnv, parseConfig } from "../src/config/load.js";
import {
  event,
  exception,
  messageEnd,
  messageStart,
  reasoningBlock,
  startFakeBedrock,
  textAnswer,
  textBlock,
  toolBlock,
  type FakeBedrock,
  type Frame,
} from "./helpers/fake-bedrock.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, message, readAll, spillwayClient } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse, postJson, readSse } from "./helpers/sse.js";

/** A Bedrock model id with the `:` that the signature must double-encode. */
const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ID = `bedrock/${MODEL}`;
const PATH = `/model/${encodeURIComponent(MODEL)}/converse-stream`;

describe("fake Bedrock against AWS's own SDK", () => {
  it("ConverseStreamCommand signs requests the fake accepts and decodes the fake's frames", async () => {
    const fake = await startFakeBedrock(() => ({
      frames: [messageStart(), ...textBlock(0, ["Hel", "lo"]), ...toolBlock(1, "tu_1", "get_weather", ['{"ci', 'ty":"Paris"}']), ...messageEnd("tool_use", [11, 4])],
    }));
    const sdk = new BedrockRuntimeClient({
      region: "us-east-1",
      endpoint: fake.baseUrl,
      credentials: { accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" },
      maxAttempts: 1,
      // The SDK streams over HTTP/2 by default; the fake (like the gateway's undici client) speaks HTTP/1.1.
      requestHandler: new NodeHttpHandler(),
    });
    try {
      const out = await sdk.send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] }));
      const events: ConverseStreamOutput[] = [];
      for await (const e of out.stream!) events.push(e);
      assert.equal(fake.requests[0]!.auth, "ok");
      assert.equal(fake.requests[0]!.url, PATH);
      assert.deepEqual(fake.requests[0]!.scope, { accessKeyId: "AKIDFAKE", date: fake.requests[0]!.scope!.date, region: "us-east-1", service: "bedrock", terminator: "aws4_request" });
      assert.deepEqual(events[0]!.messageStart, { role: "assistant" });
      assert.deepEqual(events.flatMap((e) => (e.contentBlockDelta?.delta?.text ? [e.contentBlockDelta.delta.text] : [])), ["Hel", "lo"]);
      const start = events.find((e) => e.contentBlockStart)!.contentBlockStart!;
      assert.deepEqual([start.contentBlockIndex, start.start?.toolUse?.toolUseId, start.start?.toolUse?.name], [1, "tu_1", "get_weather"]);
      assert.equal(events.find((e) => e.messageStop)!.messageStop!.stopReason, "tool_use");
      assert.deepEqual(events.at(-1)!.metadata!.usage, { inputTokens: 11, outputTokens: 4, totalTokens: 15 });

      fake.script = () => ({ frames: [messageStart(), ...textBlock(0, ["x"]), exception("throttlingException", "Too many tokens")] });
      const out2 = await sdk.send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] }));
      await assert.rejects(
        async () => {
          for await (const _ of out2.stream!) void _;
        },
        (e: Error) => e.name === "ThrottlingException" && /Too many tokens/.test(e.message),
      );

      const wrong = new BedrockRuntimeClient({ region: "us-east-1", endpoint: fake.baseUrl, credentials: { accessKeyId: "AKIDFAKE", secretAccessKey: "not-it" }, maxAttempts: 1, requestHandler: new NodeHttpHandler() });
      await assert.rejects(wrong.send(new ConverseStreamCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "hi" }] }] })), (e: Error) => e.name === "InvalidSignatureException");
      assert.match(fake.requests.at(-1)!.auth, /signature mismatch/);
    } finally {
      sdk.destroy();
      await fake.close();
    }
  });
});

describe("bedrock provider", () => {
  let fake: FakeBedrock;
  let gw: TestGateway;
  let client: OpenAI;
  let grpc: SpillwayServiceClient;
  before(async () => {
    fake = await startFakeBedrock();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", models: [MODEL] },
        badkey: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "wrong" },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    grpc = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    grpc.close();
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({ frames: textAnswer(["Hello", " from Bedrock"]) });
    fake.requests.length = 0;
  });

  it("streams a chat completion: text in order, usage and finish last; the request is a signed Converse call", async () => {
    fake.script = () => ({ frames: textAnswer(["Hel", "lo", " there"], [12, 3]) });
    const stream = await client.chat.completions.create({
      model: ID,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "hi" },
        { role: "user", content: "   " },
        { role: "assistant", content: "Hello?" },
        { role: "user", content: "again" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 99,
      stop: ["END"],
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    for (const c of chunks) assertSchema("CreateChatCompletionStreamResponse", c);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Hello there");
    const last = chunks.at(-1)!;
    assert.deepEqual([last.usage!.prompt_tokens, last.usage!.completion_tokens, last.usage!.total_tokens], [12, 3, 15]);
    assert.equal(chunks.findLast((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, "stop");

    const req = fake.requests[0]!;
    assert.equal(req.auth, "ok");
    assert.equal(req.url, PATH);
    assert.equal(req.scope!.region, "us-east-1");
    assert.equal(req.scope!.service, "bedrock");
    assert.equal(req.headers["host"], new URL(fake.baseUrl).host, "the exact Host, port included, is sent (and signed)");
    assert.deepEqual(req.body, {
      messages: [
        { role: "user", content: [{ text: "hi" }] },
        { role: "assistant", content: [{ text: "Hello?" }] },
        { role: "user", content: [{ text: "again" }] },
      ],
      system: [{ text: "You are terse." }],
      inferenceConfig: { maxTokens: 99, temperature: 0.2, topP: 0.9, stopSequences: ["END"] },
    });
  });

  it("non-streamed chat completions collect the stream", async () => {
    const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "hi" }] });
    assertSchema("CreateChatCompletionResponse", r);
    assert.equal(r.choices[0]!.message.content, "Hello from Bedrock");
    assert.equal(r.usage!.total_tokens, 15);
  });

  it("the Responses door streams Bedrock text: deltas in order, then response.completed with usage", async () => {
    fake.script = () => ({ frames: textAnswer(["Resp", "onses"], [7, 2]) });
    const stream = await client.responses.create({ model: ID, input: "hi", stream: true });
    const types: string[] = [];
    let text = "";
    let usage: { input_tokens: number; output_tokens: number } | undefined;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed") usage = e.response.usage ?? undefined;
    }
    assert.equal(text, "Responses");
    assert.equal(types.at(-1), "response.completed");
    assert.deepEqual([usage?.input_tokens, usage?.output_tokens], [7, 2]);
  });

  it("fragmented toolUse input and parallel calls: indexes count tool blocks only, finish_reason tool_calls", async () => {
    fake.script = () => ({
      frames: [
        messageStart(),
        ...textBlock(0, ["Let me check."]),
        ...toolBlock(1, "tooluse_A", "get_weather", ['{"ci', 'ty": "Par', 'is"}']),
        ...toolBlock(2, "tooluse_B", "get_time", ["", '{"tz":', '"CET"}']),
        ...messageEnd("tool_use"),
      ],
    });
    const stream = await client.chat.completions.create({
      model: ID,
      messages: [{ role: "user", content: "weather and time in Paris?" }],
      tools: [
        { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
        { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } } },
      ],
      tool_choice: "required",
      stream: true,
    });
    const calls = new Map<number, { id: string; name: string; args: string }>();
    let text = "";
    let finish: string | null = null;
    for await (const c of stream) {
      assertSchema("CreateChatCompletionStreamResponse", c);
      const ch = c.choices[0];
      if (!ch) continue;
      text += ch.delta.content ?? "";
      for (const tc of ch.delta.tool_calls ?? []) {
        const cur = calls.get(tc.index) ?? { id: "", name: "", args: "" };
        cur.id += tc.id ?? "";
        cur.name += tc.function?.name ?? "";
        cur.args += tc.function?.arguments ?? "";
        calls.set(tc.index, cur);
      }
      finish = ch.finish_reason ?? finish;
    }
    assert.equal(text, "Let me check.");
    assert.deepEqual([...calls.keys()], [0, 1]);
    assert.deepEqual(calls.get(0), { id: "tooluse_A", name: "get_weather", args: '{"city": "Paris"}' });
    assert.deepEqual(calls.get(1), { id: "tooluse_B", name: "get_time", args: '{"tz":"CET"}' });
    assert.equal(finish, "tool_calls");
    const body = fake.requests[0]!.body;
    assert.deepEqual(body.toolConfig, {
      tools: [
        { toolSpec: { name: "get_weather", description: "Weather", inputSchema: { json: { type: "object", properties: { city: { type: "string" } } } } } },
        { toolSpec: { name: "get_time", inputSchema: { json: { type: "object", properties: { tz: { type: "string" } } } } } },
      ],
      toolChoice: { any: {} },
    });
  });

  it("a tool result round trip: toolUse and toolResult blocks, toolConfig sent although no tools are offered", async () => {
    const r = await client.chat.completions.create({
      model: ID,
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: null, tool_calls: [{ id: "tooluse_A", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "tooluse_A", content: "18C and sunny" },
      ],
    });
    assert.equal(r.choices[0]!.message.content, "Hello from Bedrock");
    const body = fake.requests[0]!.body;
    assert.deepEqual(body.messages, [
      { role: "user", content: [{ text: "weather?" }] },
      { role: "assistant", content: [{ toolUse: { toolUseId: "tooluse_A", name: "get_weather", input: { city: "Paris" } } }] },
      { role: "user", content: [{ toolResult: { toolUseId: "tooluse_A", content: [{ text: "18C and sunny" }] } }] },
    ]);
    assert.deepEqual(body.toolConfig, { tools: [{ toolSpec: { name: "get_weather", inputSchema: { json: { type: "object", properties: {} } } } }] });
  });

  it("images in: a data: URL becomes an image block with its bytes; an https URL is refused naming the field", async () => {
    const png = Buffer.from("89504e470d0a1a0a", "hex").toString("base64");
    await client.chat.completions.create({
      model: ID,
      messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }] }],
    });
    assert.deepEqual(fake.requests[0]!.body.messages[0].content, [{ text: "what is this?" }, { image: { format: "png", source: { bytes: png } } }]);
    const res = await postJson(`${gw.baseUrl}/chat/completions`, {
      model: ID,
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }],
    });
    assert.equal(res.status, 400);
    const j = (await res.json()) as { error: { param: string; message: string } };
    assert.equal(j.error.param, "messages[0].content[0]");
    assert.match(j.error.message, /inline bytes/);
  });

  it("documents in: a PDF file part becomes a document block with a clean name", async () => {
    const pdf = Buffer.from("%PDF-1.4 fake").toString("base64");
    await client.chat.completions.create({
      model: ID,
      messages: [{ role: "user", content: [{ type: "text", text: "summarize" }, { type: "file", file: { file_data: `data:application/pdf;base64,${pdf}`, filename: "q3_report.v2.pdf" } }] }],
    });
    assert.deepEqual(fake.requests[0]!.body.messages[0].content[1], { document: { format: "pdf", name: "q3 report v2", source: { bytes: pdf } } });
  });

  it("cache_control marks become cachePoint blocks (system, content part, tool); a legacy prompt is one user turn", async () => {
    const cache = { type: "ephemeral", ttl: "" };
    const user = { ...message("user", "long doc"), contents: [{ part: { $case: "text" as const, value: "long doc" }, cacheControl: cache }, { part: { $case: "text" as const, value: "question" } }] };
    const tool = { name: "f", description: "", parameters: { type: "object" }, strict: false, cacheControl: cache };
    const { error } = await readAll(grpc.generate(generateRequest(ID, "", { messages: [message("system", "sys"), user], tools: [tool], systemCacheControl: cache })));
    assert.equal(error, undefined);
    const body = fake.requests[0]!.body;
    assert.deepEqual(body.system, [{ text: "sys" }, { cachePoint: { type: "default" } }]);
    assert.deepEqual(body.messages[0].content, [{ text: "long doc" }, { cachePoint: { type: "default" } }, { text: "question" }]);
    assert.deepEqual(body.toolConfig.tools[1], { cachePoint: { type: "default" } });

    const c = await client.completions.create({ model: ID, prompt: "Say hi" });
    assert.equal(c.choices[0]!.text, "Hello from Bedrock");
    assert.deepEqual(fake.requests[1]!.body.messages, [{ role: "user", content: [{ text: "Say hi" }] }]);
  });

  it("a conversation that does not start with a user turn is refused naming the field", async () => {
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "assistant", content: "hi" }, { role: "user", content: "x" }] });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { param: string } }).error.param, "messages[0].role");
    assert.equal(fake.requests.length, 0);
  });

  it("reasoning (gRPC door): reasoningContent text and signature become reasoning chunks; a budget becomes Claude's thinking config", async () => {
    fake.script = () => ({ frames: [messageStart(), ...reasoningBlock(0, ["Let me ", "think."], "sig-abc"), ...textBlock(1, ["42"]), ...messageEnd("end_turn")] });
    const { chunks, error } = await readAll(
      grpc.generate(generateRequest(ID, "meaning of life?", { reasoning: { effort: "", budgetTokens: 2048, summary: "", disabled: false }, maxTokens: 4096 })),
    );
    assert.equal(error, undefined);
    const reasoning = chunks.flatMap((c) => (c.payload?.$case === "reasoning" ? [c.payload.value] : []));
    assert.equal(reasoning.map((r) => r.text).join(""), "Let me think.");
    assert.equal(reasoning.map((r) => r.signature).join(""), "sig-abc");
    assert.ok(reasoning.every((r) => r.index === 0));
    const kinds = chunks.map((c) => c.payload?.$case);
    assert.ok(kinds.lastIndexOf("reasoning") < kinds.indexOf("text"));
    assert.deepEqual(kinds.slice(-2), ["usage", "finish"]);
    assert.deepEqual(fake.requests[0]!.body.additionalModelRequestFields, { thinking: { type: "enabled", budget_tokens: 2048 } });
  });

  it("reasoning through the openai SDK: Responses reasoning_text events, chat reasoning_content; reasoning.effort becomes a thinking budget", async () => {
    const frames = (): Frame[] => [messageStart(), ...reasoningBlock(0, ["Let me ", "think."], "sig-abc"), ...textBlock(1, ["42"]), ...messageEnd("end_turn")];
    fake.script = () => ({ frames: frames() });
    const stream = await client.responses.create({ model: ID, input: "meaning of life?", reasoning: { effort: "medium" }, max_output_tokens: 8000, stream: true });
    let reasoning = "";
    let text = "";
    for await (const e of stream) {
      if (e.type === "response.reasoning_text.delta") reasoning += e.delta;
      if (e.type === "response.output_text.delta") text += e.delta;
    }
    assert.equal(reasoning, "Let me think.");
    assert.equal(text, "42");
    assert.deepEqual(fake.requests[0]!.body.additionalModelRequestFields, { thinking: { type: "enabled", budget_tokens: 4096 } });

    fake.script = () => ({ frames: frames() });
    const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "q" }] });
    assert.equal((r.choices[0]!.message as unknown as { reasoning_content?: string }).reasoning_content, "Let me think.");
    assert.equal(r.choices[0]!.message.content, "42");
  });

  it("reasoning blocks of an earlier turn are carried back with their signature", async () => {
    const assistant = { ...message("assistant", "42"), contents: [{ part: { $case: "reasoning" as const, value: { text: "I thought.", signature: "sig-1", encrypted: "", summary: false, id: "" } } }, { part: { $case: "text" as const, value: "42" } }] };
    const { error } = await readAll(grpc.generate(generateRequest(ID, "", { messages: [message("user", "q"), assistant, message("user", "why?")] })));
    assert.equal(error, undefined);
    assert.deepEqual(fake.requests[0]!.body.messages[1], {
      role: "assistant",
      content: [{ reasoningContent: { reasoningText: { text: "I thought.", signature: "sig-1" } } }, { text: "42" }],
    });

    const redacted = { ...message("assistant", "42"), contents: [{ part: { $case: "reasoning" as const, value: { text: "", signature: "", encrypted: "b3BhcXVl", summary: false, id: "" } } }, { part: { $case: "text" as const, value: "42" } }] };
    await readAll(grpc.generate(generateRequest(ID, "", { messages: [message("user", "q"), redacted, message("user", "why?")] })));
    assert.deepEqual(fake.requests[1]!.body.messages[1].content[0], { reasoningContent: { redactedContent: "b3BhcXVl" } });
  });

  it("JSON-schema output (gRPC door): a forced tool whose streamed input is the text answer, finish stop", async () => {
    fake.script = () => ({ frames: [messageStart(), ...toolBlock(0, "tu_json", "person", ['{"name":', '"Ada"}']), ...messageEnd("tool_use")] });
    const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
    const { chunks, error } = await readAll(
      grpc.generate(generateRequest(ID, "who?", { responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "person", description: "", schema, strict: true } })),
    );
    assert.equal(error, undefined);
    const text = chunks.flatMap((c) => (c.payload?.$case === "text" ? [c.payload.value.text] : [])).join("");
    assert.deepEqual(JSON.parse(text), { name: "Ada" });
    assert.ok(!chunks.some((c) => c.payload?.$case === "toolCall"));
    const fin = chunks.at(-1)!.payload;
    assert.equal(fin?.$case, "finish");
    assert.equal((fin).value.reason, 1);
    const tc = fake.requests[0]!.body.toolConfig;
    assert.deepEqual(tc.toolChoice, { tool: { name: "person" } });
    assert.deepEqual(tc.tools[0].toolSpec.inputSchema, { json: schema });
  });

  it("JSON-schema output through the openai SDK: response_format json_schema becomes the forced tool", async () => {
    fake.script = () => ({ frames: [messageStart(), ...toolBlock(0, "tu_json", "city", ['{"city"', ':"Paris"}']), ...messageEnd("tool_use")] });
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false };
    const r = await client.chat.completions.create({
      model: ID,
      messages: [{ role: "user", content: "capital of France?" }],
      response_format: { type: "json_schema", json_schema: { name: "city", schema, strict: true } },
    });
    assert.deepEqual(JSON.parse(r.choices[0]!.message.content!), { city: "Paris" });
    assert.equal(r.choices[0]!.finish_reason, "stop");
    assert.equal(r.choices[0]!.message.tool_calls, undefined);
    assert.deepEqual(fake.requests[0]!.body.toolConfig.toolChoice, { tool: { name: "city" } });
    assert.deepEqual(fake.requests[0]!.body.toolConfig.tools[0].toolSpec.inputSchema.json, schema);
  });

  it("stop reasons: max_tokens → length, content_filtered / guardrail_intervened → content_filter", async () => {
    for (const [reason, expected] of [
      ["max_tokens", "length"],
      ["content_filtered", "content_filter"],
      ["guardrail_intervened", "content_filter"],
      ["stop_sequence", "stop"],
    ] as const) {
      fake.script = () => ({ frames: [messageStart(), ...textBlock(0, ["x"]), ...messageEnd(reason)] });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.finish_reason, expected, reason);
    }
  });

  describe("errors before the stream keep their meaning", () => {
    const cases: Array<[string, number, number]> = [
      ["ThrottlingException", 429, 429],
      ["ValidationException", 400, 400],
      ["AccessDeniedException", 403, 403],
      ["ResourceNotFoundException", 404, 404],
      ["InternalServerException", 500, 502],
      ["ServiceUnavailableException", 503, 502],
      ["ModelTimeoutException", 408, 504],
    ];
    for (const [type, upstream, status] of cases) {
      it(`${type} (${upstream}) → ${status}`, async () => {
        fake.script = () => ({ status: upstream, errorType: type, errorMessage: `boom ${type}`, headers: { "retry-after": "7" } });
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
        assert.equal(res.status, status);
        const j = (await res.json()) as { error: { message: string } };
        assert.match(j.error.message, new RegExp(`boom ${type}`));
        if (status === 429) assert.equal(res.headers.get("retry-after"), "7");
      });
    }

    it("credentials AWS refuses (bad signature) → 401, and the fake saw the mismatch", async () => {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "badkey/m", messages: [{ role: "user", content: "x" }] });
      assert.equal(res.status, 401);
      assert.match(fake.requests[0]!.auth, /signature mismatch/);
    });
  });

  describe("failures mid-stream are in-band, never a silent truncation", () => {
    it("an exception frame after content: the content, then an error naming Bedrock's exception", async () => {
      fake.script = () => ({ frames: [messageStart(), ...textBlock(0, ["partial"]).slice(0, 1), exception("modelStreamErrorException", "The model broke")] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 200);
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.ok(!events.includes("[DONE]"));
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "partial");
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "upstream_error");
      assert.match(err.message, /The model broke \(modelStreamErrorException\)/);
    });

    it("a throttlingException frame before any content is a 429 status", async () => {
      fake.script = () => ({ frames: [messageStart(), exception("throttlingException", "slow down")] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 429);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /slow down/);
    });

    it("a body cut in the middle of a frame is reported as truncated", async () => {
      fake.script = () => ({ frames: textAnswer(["half", " more"]), cutAfter: 2 });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      const events = parseSse(await res.text()).map((e) => e.data);
      assert.equal(JSON.parse(events[0]!).choices[0].delta.content, "half");
      assert.notEqual(JSON.parse(events.at(-1)!).error, undefined);
    });

    it("a body that ends after messageStop but before metadata (usage) fails as truncated", async () => {
      fake.script = () => ({ frames: [messageStart(), ...textBlock(0, ["all"]), event("messageStop", { stopReason: "end_turn" })] });
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      const events = parseSse(await res.text()).map((e) => e.data);
      const err = JSON.parse(events.at(-1)!).error;
      assert.equal(err.code, "upstream_truncated");
      assert.match(err.message, /usage/);
    });
  });

  it("bytes of a frame still arriving are life: a frame trickling in over 1 s passes 400 ms timeouts, silence does not", async () => {
    const slow = await startTestGateway({
      limits: { timeoutMs: 400, idleTimeoutMs: 400 },
      routing: { maxAttempts: 1 },
      providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" } },
    });
    try {
      // Frames in 25-byte pieces 100 ms apart: about a second before the first payload, never 400 ms of silence.
      fake.script = () => ({ frames: textAnswer(["slow", " but alive"]), pieceBytes: 25, pieceDelayMs: 100 });
      const c = new OpenAI({ baseURL: slow.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await c.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "slow but alive");

      fake.script = () => ({ frames: textAnswer(["never"]), stallAfter: 1 });
      const res = await postJson(`${slow.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
      assert.equal(res.status, 504);
    } finally {
      await slow.close();
    }
  });

  it("a client that disconnects mid-stream aborts the upstream request", async () => {
    fake.script = () => ({ frames: textAnswer(Array.from({ length: 200 }, (_, i) => `w${i} `)), delayMs: 20, pieceBytes: 4096 });
    const aborted = fake.nextAbort();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: ID, messages: [{ role: "user", content: "x" }], stream: true });
    let deltas = 0;
    await readSse(res, () => (++deltas >= 3 ? "stop" : undefined));
    const rec = await aborted;
    assert.ok(rec.abortedAt !== undefined);
    assert.equal(rec.url, PATH);
  });

  it("lists its configured models; /readyz names the provider", async () => {
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === ID));
    const ready = (await (await fetch(`${gw.origin}/readyz`)).json()) as { providers: Array<{ name: string; state: string }> };
    assert.deepEqual(ready.providers.find((p) => p.name === "bedrock"), { name: "bedrock", state: "ok", unavailable: [] });
  });
});

describe("bedrock provider fallback and config", () => {
  it("falls back to another provider before the first byte when Bedrock fails", async () => {
    const fake = await startFakeBedrock(() => ({ status: 500, errorType: "InternalServerException", errorMessage: "down" }));
    const gw = await startTestGateway({
      routing: { maxAttempts: 1, fallbacks: { [ID]: ["local/echo"] } },
      providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "echo me" }] });
      assert.equal(r.model, "echo");
      assert.match(r.choices[0]!.message.content ?? "", /echo me/);
      assert.equal(fake.requests.length, 1);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("stream: false uses the whole-answer /converse route", async () => {
    const fake = await startFakeBedrock(() => ({
      answer: {
        output: { message: { role: "assistant", content: [{ text: "Whole." }, { toolUse: { toolUseId: "tu_9", name: "f", input: { a: 1 } } }] } },
        stopReason: "tool_use",
        usage: { inputTokens: 5, outputTokens: 2, totalTokens: 7 },
        metrics: { latencyMs: 10 },
      },
    }));
    const gw = await startTestGateway({
      routing: { maxAttempts: 1 },
      providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", stream: false } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] });
      assert.equal(fake.requests[0]!.url, `/model/${encodeURIComponent(MODEL)}/converse`);
      assert.equal(fake.requests[0]!.auth, "ok");
      assert.equal(r.choices[0]!.message.content, "Whole.");
      assert.deepEqual(r.choices[0]!.message.tool_calls, [{ id: "tu_9", type: "function", function: { name: "f", arguments: '{"a":1}' } }]);
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
      assert.equal(r.usage!.total_tokens, 7);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("a 429 with Retry-After is retried and the retry is served", async () => {
    let n = 0;
    const fake = await startFakeBedrock(() => (n++ === 0 ? { status: 429, errorType: "ThrottlingException", errorMessage: "slow", headers: { "retry-after": "0" } } : { frames: textAnswer(["ok"]) }));
    const gw = await startTestGateway({
      routing: { maxAttempts: 2, baseDelayMs: 1 },
      providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" } },
    });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "ok");
      assert.equal(fake.requests.length, 2);
      assert.ok(fake.requests.every((q) => q.auth === "ok"));
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("without `models`, /v1/models lists the account's text models and inference profiles from the (signed) control plane", async () => {
    const fake = await startFakeBedrock();
    const gw = await startTestGateway({ providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" } } });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const ids = (await client.models.list()).data.map((m) => m.id).filter((id) => id.startsWith("bedrock/"));
      assert.deepEqual(ids.sort(), ["bedrock/amazon.nova-lite-v1:0", "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0"]);
      const lists = fake.requests.filter((q) => q.method === "GET");
      assert.deepEqual(lists.map((q) => q.url.split("?")[0]).sort(), ["/foundation-models", "/inference-profiles"]);
      assert.ok(lists.every((q) => q.auth === "ok"));
      assert.equal(new URLSearchParams(lists.find((q) => q.url.startsWith("/foundation-models"))!.url.split("?")[1]).get("byOutputModality"), "TEXT");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it("credentials from AWS's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN) and region/endpoint from the environment", async () => {
    const fake = await startFakeBedrock(undefined, { AKIDENV: "env-secret" }, "eu-west-1");
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: "AKIDENV", AWS_SECRET_ACCESS_KEY: "env-secret", AWS_SESSION_TOKEN: "session-tok" });
    const config = parseConfig(applyEnv({ providers: { bedrock: { type: "bedrock" } } }, { AWS_REGION: "eu-west-1", AWS_ENDPOINT_URL_BEDROCK_RUNTIME: fake.baseUrl }));
    const p = config.providers["bedrock"]!;
    assert.deepEqual([p.type, (p as { region: string }).region, (p as { baseUrl: string }).baseUrl], ["bedrock", "eu-west-1", fake.baseUrl]);
    const gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { bedrock: p } });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "Hello from Bedrock");
      const req = fake.requests[0]!;
      assert.equal(req.auth, "ok");
      assert.equal(req.scope!.region, "eu-west-1");
      assert.equal(req.headers["x-amz-security-token"], "session-tok");
    } finally {
      process.env = saved;
      await gw.close();
      await fake.close();
    }
  });

  it("credentials from a named profile of the shared credentials file (`profile:`)", async () => {
    const fake = await startFakeBedrock(undefined, { AKIDPROFILE: "profile-secret" });
    const dir = mkdtempSync(join(tmpdir(), "spillway-aws-"));
    writeFileSync(join(dir, "credentials"), "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = nope\n\n[prod]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n");
    const saved = { ...process.env };
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]) delete process.env[k];
    Object.assign(process.env, { AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"), AWS_CONFIG_FILE: join(dir, "config") });
    const gw = await startTestGateway({ routing: { maxAttempts: 1 }, providers: { bedrock: { type: "bedrock", region: "us-east-1", baseUrl: fake.baseUrl, profile: "prod" } } });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await client.chat.completions.create({ model: ID, messages: [{ role: "user", content: "x" }] });
      assert.equal(r.choices[0]!.message.content, "Hello from Bedrock");
      assert.equal(fake.requests[0]!.scope!.accessKeyId, "AKIDPROFILE");
      assert.equal(fake.requests[0]!.auth, "ok");
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
      await gw.close();
      await fake.close();
    }
  });

  it("config errors name the field", () => {
    assert.throws(() => parseConfig(applyEnv({ providers: { b: { type: "bedrock" } } }, {})), /providers\.b\.region/);
    assert.throws(() => parseConfig(applyEnv({ providers: { b: { type: "bedrock", region: "us-east-1", accessKeyId: "A" } } }, {})), /providers\.b\.secretAccessKey/);
    assert.throws(() => parseConfig(applyEnv({ providers: { b: { type: "bedrock", region: "us-east-1", bogus: 1 } } }, {})), /bogus/);
  });
});
