/**
 * The typed request fields reach each upstream as its vendor expects them.
 * Requests are built with the typed fields only (through the gRPC door) and
 * the bodies and headers the fake upstreams recorded are checked: the
 * Anthropic body equals one typed as the official SDK's
 * `MessageCreateParamsStreaming` (so what is sent is what the SDK would
 * accept), the OpenAI bodies validate against OpenAI's OpenAPI schemas.
 * With an `anthropic/…` model nothing Anthropic understands is lost: cache
 * markers (parts, tools, system), thinking signatures and redacted
 * thinking, documents of every source, nested tool results with `is_error`.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import OpenAI from "openai";
import type Anthropic from "@anthropic-ai/sdk";
import type { CacheControl, ContentPart, FilePart, GenerateRequest, ImagePart, Message } from "../src/gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../src/gen/spillway/v1/request.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { makeMessage } from "../src/engine/requests.js";
import { ANTHROPIC_VERSION, anthropicHeaders } from "../src/providers/anthropic/anthropic-provider.js";
import { startFakeAnthropic, type FakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient, trailer } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";
import { upstreamResponses } from "./helpers/upstream-responses.js";

const PNG = Buffer.from("89504e470d0a1a0a", "hex");
const PDF = Buffer.from("%PDF-1.4 fake");
const WAV = Buffer.from("RIFF0000WAVEfmt ");
const b64 = (b: Buffer): string => b.toString("base64");

const text = (value: string, cacheControl?: CacheControl): ContentPart => ({ part: { $case: "text", value }, cacheControl });
const image = (v: Partial<ImagePart>): ContentPart => ({ part: { $case: "image", value: { url: "", data: Buffer.alloc(0), mediaType: "", detail: "", ...v } } });
const file = (v: Partial<FilePart>): ContentPart => ({
  part: { $case: "file", value: { url: "", data: Buffer.alloc(0), mediaType: "", filename: "", fileId: "", text: "", title: "", context: "", citations: false, ...v } },
});
const audio = (data: Buffer, format: string): ContentPart => ({ part: { $case: "inputAudio", value: { data, format } } });
const thought = (v: { text?: string; signature?: string; encrypted?: string; summary?: boolean; id?: string }): ContentPart => ({
  part: { $case: "reasoning", value: { text: "", signature: "", encrypted: "", summary: false, id: "", ...v } },
});
const msg = (role: string, m: Partial<Message> = {}): Message => makeMessage({ role, ...m });
const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false };
const weatherTool = { name: "get", description: "Get it", parameters: { type: "object", properties: { a: { type: "number" } } }, strict: false };

describe("typed request fields at the upstreams", () => {
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
  beforeEach(() => {
    openai.script = () => ({});
    anthropic.script = () => ({});
  });

  const call = async (req: GenerateRequest) => {
    const r = await readAll(client.generate(req));
    assert.equal(r.error, undefined, r.error?.message);
    return r;
  };

  it("anthropic/…: contents, cache markers, thinking, tool results, reasoning budget and every typed field, as the SDK types them", async () => {
    const req = generateRequest("anthropic/claude-fake-1", "", {
      messages: [
        msg("system", { content: "Be terse." }),
        msg("developer", { content: "Use metric." }),
        msg("user", {
          content: "Look: Summarize.",
          contents: [
            text("Look:"),
            image({ data: PNG, mediaType: "image/png" }),
            image({ url: "https://example.com/cat.jpg" }),
            file({ data: PDF, mediaType: "application/pdf", title: "Report", citations: true }),
            file({ text: "plain doc", context: "ctx" }),
            file({ url: "https://example.com/a.pdf" }),
            file({ fileId: "file_123" }),
            text("Summarize.", { type: "ephemeral", ttl: "1h" }),
          ],
        }),
        msg("assistant", {
          content: "Calling.",
          contents: [{ ...thought({ text: "hmm", signature: "sig1" }), cacheControl: { type: "ephemeral", ttl: "" } }, thought({ encrypted: "red" }), thought({ id: "rs_x", text: "an OpenAI summary", summary: true }), text("Calling.")],
          toolCalls: [{ id: "toolu_1", name: "get", arguments: '{"a":1}' }],
        }),
        msg("tool", { toolCallId: "toolu_1", toolError: true, content: "failed:", contents: [text("failed:"), image({ data: PNG, mediaType: "image/png" })] }),
        msg("user", { content: "go on" }),
      ],
      tools: [{ ...weatherTool, cacheControl: { type: "ephemeral", ttl: "" } }],
      toolChoice: "auto",
      parallelToolCalls: false,
      systemCacheControl: { type: "ephemeral", ttl: "" },
      maxTokens: 5000,
      temperature: 1,
      topK: 40,
      stop: ["END"],
      reasoning: { effort: "", budgetTokens: 2000, summary: "", disabled: false },
      responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "out", description: "", schema, strict: true },
      user: "u-1",
      metadata: { trace: "t1" },
      seed: 3,
      presencePenalty: 0.5,
      serviceTier: "auto",
      extra: { anthropic: { inference_geo: "us" }, openai: { logit_bias: { "1": 2 } } },
      upstreamHeaders: { "anthropic-beta": "files-api-2025-04-14", "anthropic-version": "2099-01-01", "openai-organization": "org-x", "x-other": "no" },
    });
    await call(req);
    const up = anthropic.requests.at(-1)!;
    const png = { type: "base64", media_type: "image/png", data: b64(PNG) } as const;
    const expected: Anthropic.MessageCreateParamsStreaming = {
      inference_geo: "us",
      model: "claude-fake-1",
      max_tokens: 5000,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Look:" },
            { type: "image", source: png },
            { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
            { type: "document", source: { type: "base64", media_type: "application/pdf", data: b64(PDF) }, title: "Report", citations: { enabled: true } },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "plain doc" }, context: "ctx" },
            { type: "document", source: { type: "url", url: "https://example.com/a.pdf" } },
            { type: "document", source: { type: "file", file_id: "file_123" } },
            { type: "text", text: "Summarize.", cache_control: { type: "ephemeral", ttl: "1h" } },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hmm", signature: "sig1" },
            { type: "redacted_thinking", data: "red" },
            { type: "text", text: "Calling." },
            { type: "tool_use", id: "toolu_1", name: "get", input: { a: 1 } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "failed:" }, { type: "image", source: png }], is_error: true },
            { type: "text", text: "go on" },
          ],
        },
      ],
      stream: true,
      system: [
        { type: "text", text: "Be terse." },
        { type: "text", text: "Use metric.", cache_control: { type: "ephemeral" } },
      ],
      thinking: { type: "enabled", budget_tokens: 2000 },
      stop_sequences: ["END"],
      metadata: { user_id: "u-1" },
      service_tier: "auto",
      output_config: { format: { type: "json_schema", schema } },
      tools: [{ name: "get", description: "Get it", input_schema: { type: "object", properties: { a: { type: "number" } } }, cache_control: { type: "ephemeral" } }],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
    };
    // @anthropic-ai/sdk 1.14 no longer types the sampling parameters; a client's are still sent.
    assert.deepEqual(up.body, { ...expected, temperature: 1, top_k: 40 });
    assert.equal(up.headers["anthropic-beta"], "files-api-2025-04-14");
    assert.equal(up.headers["anthropic-version"], "2099-01-01");
    assert.equal(up.headers["openai-organization"], undefined);
    assert.equal(up.headers["x-other"], undefined);
  });

  it("anthropic/…: an effort alone becomes a documented thinking budget; disabled is sent as disabled; a bare JSON-object format is not sent", async () => {
    await call(generateRequest("anthropic/claude-fake-1", "x", { reasoning: { effort: "high", budgetTokens: 0, summary: "", disabled: false } }));
    let body = anthropic.requests.at(-1)!.body;
    assert.deepEqual(body.thinking, { type: "enabled", budget_tokens: 4096 });
    assert.equal(body.max_tokens, 4096 + 4096, "no max_tokens given: the budget plus the default");

    await call(generateRequest("anthropic/claude-fake-1", "x", { maxTokens: 2000, reasoning: { effort: "xhigh", budgetTokens: 0, summary: "", disabled: false } }));
    body = anthropic.requests.at(-1)!.body;
    assert.deepEqual(body.thinking, { type: "enabled", budget_tokens: 1999 }, "an effort's budget is kept under the client's max_tokens");
    assert.equal(body.max_tokens, 2000);

    await call(generateRequest("anthropic/claude-fake-1", "x", { reasoning: { effort: "", budgetTokens: 0, summary: "", disabled: true } }));
    assert.deepEqual(anthropic.requests.at(-1)!.body.thinking, { type: "disabled" });

    await call(generateRequest("anthropic/claude-fake-1", "x", { responseFormat: { type: ResponseFormat_Type.TYPE_JSON_OBJECT, name: "", description: "", schema: undefined, strict: false } }));
    body = anthropic.requests.at(-1)!.body;
    assert.equal(body.output_config, undefined);
    assert.deepEqual(body.messages, [{ role: "user", content: [{ type: "text", text: "x" }] }], "no JSON instruction is added");
    assert.equal(body.system, undefined);
  });

  it("anthropic/…: audio input is refused naming the part", async () => {
    const req = generateRequest("anthropic/claude-fake-1", "", { messages: [msg("user", { contents: [audio(WAV, "wav")] })] });
    const { error } = await readAll(client.generate(req));
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.equal(trailer(error, "spillway-error-param"), "messages[0].content[0]");
  });

  it("openai/… chat: contents as chat parts, typed fields as chat fields, extra.openai only, nothing Anthropic-only", async () => {
    const req = generateRequest("openai/gpt-fake", "", {
      messages: [
        msg("system", { content: "Be terse." }),
        msg("user", {
          content: "Look:",
          contents: [
            text("Look:", { type: "ephemeral", ttl: "" }),
            image({ data: PNG, mediaType: "image/png", detail: "high" }),
            image({ url: "https://example.com/cat.jpg" }),
            audio(WAV, "wav"),
            file({ data: PDF, mediaType: "application/pdf", filename: "r.pdf" }),
            file({ fileId: "file-1" }),
            file({ text: "plain doc" }),
          ],
        }),
        msg("assistant", { content: "Calling.", contents: [thought({ text: "hmm", signature: "sig1" }), text("Calling.")], toolCalls: [{ id: "call_1", name: "get", arguments: '{"a":1}' }] }),
        msg("tool", { toolCallId: "call_1", toolError: true, content: "failed", contents: [text("failed")] }),
        msg("user", { content: "go on" }),
      ],
      tools: [{ ...weatherTool, strict: true, cacheControl: { type: "ephemeral", ttl: "" } }],
      maxTokens: 100,
      temperature: 0.2,
      topK: 40,
      stop: ["END"],
      seed: 3,
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
      user: "u-1",
      metadata: { trace: "t1" },
      serviceTier: "flex",
      responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "out", description: "The answer", schema, strict: true },
      reasoning: { effort: "high", budgetTokens: 0, summary: "", disabled: false },
      systemCacheControl: { type: "ephemeral", ttl: "" },
      extra: { openai: { logit_bias: { "50256": -100 } }, anthropic: { inference_geo: "us" } },
      upstreamHeaders: { "openai-organization": "org-x", "anthropic-beta": "b" },
    });
    await call(req);
    const up = openai.requests.at(-1)!;
    assert.equal(up.url, "/v1/chat/completions");
    assertSchema("CreateChatCompletionRequest", up.body);
    assert.deepEqual(up.body, {
      logit_bias: { "50256": -100 },
      max_tokens: 100,
      temperature: 0.2,
      stop: ["END"],
      seed: 3,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      user: "u-1",
      model: "gpt-fake",
      messages: [
        { role: "system", content: "Be terse." },
        {
          role: "user",
          content: [
            { type: "text", text: "Look:" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${b64(PNG)}`, detail: "high" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
            { type: "input_audio", input_audio: { data: b64(WAV), format: "wav" } },
            { type: "file", file: { file_data: `data:application/pdf;base64,${b64(PDF)}`, filename: "r.pdf" } },
            { type: "file", file: { file_id: "file-1" } },
            { type: "text", text: "plain doc" },
          ],
        },
        { role: "assistant", content: "Calling.", tool_calls: [{ id: "call_1", type: "function", function: { name: "get", arguments: '{"a":1}' } }] },
        { role: "tool", content: "failed", tool_call_id: "call_1" },
        { role: "user", content: "go on" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      metadata: { trace: "t1" },
      service_tier: "flex",
      response_format: { type: "json_schema", json_schema: { name: "out", description: "The answer", schema, strict: true } },
      reasoning_effort: "high",
      tools: [{ type: "function", function: { name: "get", description: "Get it", parameters: { type: "object", properties: { a: { type: "number" } } }, strict: true } }],
    });
    assert.equal(up.headers["openai-organization"], undefined, "client headers are not forwarded to OpenAI upstreams");
    assert.equal(up.headers["anthropic-beta"], undefined);
  });

  it("openai/… chat: a budget alone reads as an effort; a JSON-object format is sent as is", async () => {
    await call(generateRequest("openai/gpt-fake", "x", { reasoning: { effort: "", budgetTokens: 6000, summary: "", disabled: false } }));
    assert.equal(openai.requests.at(-1)!.body.reasoning_effort, "medium");
    await call(generateRequest("openai/gpt-fake", "x", { responseFormat: { type: ResponseFormat_Type.TYPE_JSON_OBJECT, name: "", description: "", schema: undefined, strict: false } }));
    assert.deepEqual(openai.requests.at(-1)!.body.response_format, { type: "json_object" });
    await call(generateRequest("openai/gpt-fake", "x", { reasoning: { effort: "high", budgetTokens: 0, summary: "", disabled: true } }));
    assert.equal(openai.requests.at(-1)!.body.reasoning_effort, undefined);
  });

  it("a file only by URL (chat), an image in a tool result (chat), an image with neither data nor URL (every provider) is refused naming the part", async () => {
    let r = await readAll(client.generate(generateRequest("openai/gpt-fake", "", { messages: [msg("user", { contents: [text("see"), file({ url: "https://example.com/a.pdf" })] })] })));
    assert.equal(r.error?.code, status.INVALID_ARGUMENT);
    assert.equal(trailer(r.error, "spillway-error-param"), "messages[0].content[1]");
    r = await readAll(
      client.generate(
        generateRequest("openai/gpt-fake", "", {
          messages: [
            msg("assistant", { toolCalls: [{ id: "c1", name: "get", arguments: "{}" }] }),
            msg("tool", { toolCallId: "c1", contents: [image({ url: "https://example.com/x.png" })] }),
          ],
        }),
      ),
    );
    assert.equal(r.error?.code, status.INVALID_ARGUMENT);
    assert.equal(trailer(r.error, "spillway-error-param"), "messages[1].content[0]");
    for (const model of ["openai/gpt-fake", "native/gpt-fake", "anthropic/claude-fake-1"]) {
      r = await readAll(client.generate(generateRequest(model, "", { messages: [msg("user", { contents: [text("see"), image({})] })] })));
      assert.equal(r.error?.code, status.INVALID_ARGUMENT, model);
      assert.equal(trailer(r.error, "spillway-error-param"), "messages[0].content[1]", model);
    }
  });

  it("native Responses: text.format, reasoning {effort, summary} with encrypted content included, OpenAI reasoning items carried back, input parts", async () => {
    openai.script = () => ({ events: upstreamResponses({ text: ["ok"] }), done: false });
    const req = generateRequest("native/gpt-fake", "", {
      messages: [
        msg("system", { content: "Be terse." }),
        msg("user", { content: "Look:", contents: [text("Look:"), image({ data: PNG, mediaType: "image/png" }), file({ data: PDF, mediaType: "application/pdf", filename: "r.pdf" }), file({ url: "https://example.com/a.pdf" })] }),
        msg("assistant", {
          content: "Calling.",
          contents: [thought({ id: "rs_1", text: "sum", summary: true, encrypted: "enc" }), thought({ text: "claude", signature: "s" }), text("Calling.")],
          toolCalls: [{ id: "call_1", name: "get", arguments: "{}" }],
        }),
        msg("tool", { toolCallId: "call_1", content: "22C", contents: [text("22C")] }),
        msg("user", { content: "go on" }),
      ],
      maxTokens: 50,
      responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "out", description: "", schema, strict: true },
      reasoning: { effort: "low", budgetTokens: 0, summary: "auto", disabled: false },
      user: "u-1",
      metadata: { trace: "t1" },
      serviceTier: "priority",
      extra: { openai: { prompt_cache_key: "k1" } },
    });
    await call(req);
    const up = openai.requests.at(-1)!;
    assert.equal(up.url, "/v1/responses");
    assertSchema("CreateResponse", up.body);
    assert.deepEqual(up.body, {
      prompt_cache_key: "k1",
      text: { format: { type: "json_schema", name: "out", schema, strict: true } },
      reasoning: { effort: "low", summary: "auto" },
      include: ["reasoning.encrypted_content"],
      user: "u-1",
      metadata: { trace: "t1" },
      service_tier: "priority",
      model: "gpt-fake",
      input: [
        { type: "message", role: "system", content: "Be terse." },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "Look:" },
            { type: "input_image", image_url: `data:image/png;base64,${b64(PNG)}`, detail: "auto" },
            { type: "input_file", file_data: `data:application/pdf;base64,${b64(PDF)}`, filename: "r.pdf" },
            { type: "input_file", file_url: "https://example.com/a.pdf" },
          ],
        },
        { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "sum" }], encrypted_content: "enc" },
        { type: "message", role: "assistant", content: "Calling." },
        { type: "function_call", call_id: "call_1", name: "get", arguments: "{}" },
        { type: "function_call_output", call_id: "call_1", output: "22C" },
        { type: "message", role: "user", content: "go on" },
      ],
      stream: true,
      store: false,
      max_output_tokens: 50,
    });
  });

  it("through the HTTP Responses shape with the openai SDK: a reasoning item with encrypted_content is carried back to the native upstream", async () => {
    openai.script = () => ({ events: upstreamResponses({ text: ["ok"] }), done: false });
    const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    await sdk.responses.create({
      model: "native/gpt-fake",
      reasoning: { effort: "low", summary: "auto" },
      input: [
        { role: "user", content: "first" },
        { type: "reasoning", id: "rs_9", summary: [{ type: "summary_text", text: "thought" }], encrypted_content: "enc-9" },
        { role: "assistant", content: "answer" },
        { role: "user", content: "second" },
      ],
    });
    const up = openai.requests.at(-1)!;
    assert.equal(up.url, "/v1/responses");
    assertSchema("CreateResponse", up.body);
    assert.deepEqual(up.body.input[1], { type: "reasoning", id: "rs_9", summary: [{ type: "summary_text", text: "thought" }], encrypted_content: "enc-9" });
    assert.deepEqual(up.body.include, ["reasoning.encrypted_content"]);
    assert.deepEqual(up.body.reasoning, { effort: "low", summary: "auto" });
  });

  it("native Responses: fields the Responses API lacks (seed, penalties, audio) send the chat to /chat/completions", async () => {
    for (const extra of [{ seed: 1 }, { presencePenalty: 0.1 }, { messages: [msg("user", { contents: [audio(WAV, "mp3")] })] }] as Array<Partial<GenerateRequest>>) {
      await call(generateRequest("native/gpt-fake", "x", extra));
      assert.equal(openai.requests.at(-1)!.url, "/v1/chat/completions", JSON.stringify(Object.keys(extra)));
    }
  });
});

describe("anthropicHeaders", () => {
  it("adds the client's anthropic-beta flags to the configured ones (each once), lets its anthropic-version replace the default, forwards nothing else", () => {
    const base = { "anthropic-version": ANTHROPIC_VERSION, "Anthropic-Beta": "a-1, b-2", "x-api-key": "k" };
    assert.deepEqual(anthropicHeaders(base, { "Anthropic-Beta": "b-2,c-3", "ANTHROPIC-VERSION": "2099-01-01", cookie: "no" }), {
      "anthropic-version": "2099-01-01",
      "anthropic-beta": "a-1,b-2,c-3",
      "x-api-key": "k",
    });
    assert.deepEqual(anthropicHeaders(base, {}), { "anthropic-version": ANTHROPIC_VERSION, "anthropic-beta": "a-1, b-2", "x-api-key": "k" });
    assert.throws(() => anthropicHeaders(base, { "anthropic-beta": "x\r\ny: z" }), (e: Error & { param?: string }) => e.param === "anthropic-beta");
  });
});
