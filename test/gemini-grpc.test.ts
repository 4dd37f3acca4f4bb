/**
 * The Gemini provider through the gRPC door, where requests carry the typed
 * fields directly (content parts, response format, reasoning, top_k, seed)
 * and chunks are seen as the engine makes them: thought parts arrive as
 * ReasoningDelta chunks (a Gemini 3 `thoughtSignature` as their signature,
 * sent back on the next turn), JSON-schema output becomes responseMimeType +
 * responseSchema, images inlineData / fileData.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import { ResponseFormat_Type, type ContentPart } from "../src/gen/spillway/v1/request.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { makeMessage } from "../src/engine/requests.js";
import { chunk, startFakeGemini, textAnswer, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

const MODEL = "gemini/gemini-fake-1";
const cases = (chunks: Chunk[]): string[] => chunks.map((c) => c.payload?.$case ?? "");
const text = (chunks: Chunk[]): string => chunks.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join("");
const reasoning = (chunks: Chunk[]) => chunks.flatMap((c) => (c.payload?.$case === "reasoning" ? [c.payload.value] : []));
const part = (p: ContentPart["part"]): ContentPart => ({ part: p });

describe("gemini provider through the gRPC door", () => {
  let fake: FakeGemini;
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  before(async () => {
    fake = await startFakeGemini();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "AIza-grpc" } },
    });
    client = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    client.close();
    await gw.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.script = () => ({});
    fake.requests.length = 0;
  });

  it("thought parts stream as ReasoningDelta chunks before the text; usage counts reasoning tokens", async () => {
    fake.script = () => ({
      chunks: [
        chunk([{ text: "**Weighing** the", thought: true }]),
        chunk([{ text: " options", thought: true }]),
        chunk([{ text: "Forty", thoughtSignature: "c2lnLTE=" }]),
        chunk([{ text: "-two" }], "STOP", usage(9, 2, { thoughts: 40 })),
      ],
    });
    const { chunks, error } = await readAll(
      client.generate(generateRequest(MODEL, "meaning of life?", { reasoning: { effort: "high", budgetTokens: 0, summary: "", disabled: false } })),
    );
    assert.equal(error, undefined);
    assert.deepEqual(cases(chunks), ["reasoning", "reasoning", "reasoning", "text", "text", "usage", "finish"]);
    assert.deepEqual(
      reasoning(chunks).map((r) => [r.text, r.signature, r.index, r.summary]),
      [
        ["**Weighing** the", "", 0, true],
        [" options", "", 0, true],
        ["", "c2lnLTE=", 0, false],
      ],
    );
    assert.equal(text(chunks), "Forty-two");
    const u = chunks.at(-2)!.payload;
    assert.ok(u?.$case === "usage");
    assert.deepEqual([u.value.inputTokens, u.value.outputTokens, u.value.reasoningTokens], [9, 42, 40]);
    assert.deepEqual(fake.requests[0]!.body.generationConfig, { thinkingConfig: { includeThoughts: true, thinkingBudget: 24576 } });
  });

  it("a signature on the last part of a text answer does not split the message (not required back)", async () => {
    fake.script = () => ({ chunks: [chunk([{ text: "All" }]), chunk([{ text: " done", thoughtSignature: "c2lnLWVuZA==" }]), chunk([{ text: "", thoughtSignature: "c2lnLTI=" }], "STOP", usage(2, 2))] });
    const { chunks } = await readAll(client.generate(generateRequest(MODEL)));
    assert.deepEqual(cases(chunks), ["text", "text", "usage", "finish"]);
    assert.equal(text(chunks), "All done");
  });

  it("reasoning budgets, Gemini 3 thinking levels and disabled reasoning map to thinkingConfig", async () => {
    await readAll(client.generate(generateRequest(MODEL, "x", { reasoning: { effort: "", budgetTokens: 2048, summary: "", disabled: false } })));
    await readAll(client.generate(generateRequest("gemini/gemini-3-pro-preview", "x", { reasoning: { effort: "low", budgetTokens: 0, summary: "", disabled: false } })));
    await readAll(client.generate(generateRequest(MODEL, "x", { reasoning: { effort: "", budgetTokens: 0, summary: "", disabled: true } })));
    assert.deepEqual(
      fake.requests.map((r) => r.body.generationConfig.thinkingConfig),
      [{ includeThoughts: true, thinkingBudget: 2048 }, { includeThoughts: true, thinkingLevel: "LOW" }, { thinkingBudget: 0 }],
    );
    assert.equal(fake.requests[1]!.url, "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse");
  });

  it("a signed function call: the signature streams as reasoning, and goes back on the call in the next turn", async () => {
    fake.script = () => ({
      chunks: [chunk([{ functionCall: { name: "lookup", args: { q: "x" } }, thoughtSignature: "c2lnLWNhbGw=" }], "STOP", usage(5, 3))],
    });
    const first = await readAll(client.generate(generateRequest(MODEL, "find x", { tools: [{ name: "lookup", description: "", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: false }] })));
    assert.deepEqual(cases(first.chunks), ["reasoning", "toolCall", "usage", "finish"]);
    assert.equal(reasoning(first.chunks)[0]!.signature, "c2lnLWNhbGw=");
    const call = first.chunks[1]!.payload;
    assert.ok(call?.$case === "toolCall");
    const finish = first.chunks.at(-1)!.payload;
    assert.ok(finish?.$case === "finish" && finish.value.reason === 3, "finish TOOL_CALLS");

    fake.script = () => ({ chunks: textAnswer(["found"]) });
    const second = await readAll(
      client.generate(
        generateRequest(MODEL, "", {
          messages: [
            makeMessage({ role: "user", content: "find x" }),
            makeMessage({
              role: "assistant",
              contents: [part({ $case: "reasoning", value: { text: "", signature: "c2lnLWNhbGw=", encrypted: "", summary: false, id: "" } })],
              toolCalls: [{ id: call.value.id, name: "lookup", arguments: '{"q":"x"}' }],
            }),
            makeMessage({ role: "tool", toolCallId: call.value.id, content: '{"hits":1}' }),
          ],
        }),
      ),
    );
    assert.equal(second.error, undefined);
    assert.deepEqual(fake.requests[1]!.body.contents, [
      { role: "user", parts: [{ text: "find x" }] },
      { role: "model", parts: [{ functionCall: { name: "lookup", args: { q: "x" } }, thoughtSignature: "c2lnLWNhbGw=" }] },
      { role: "user", parts: [{ functionResponse: { name: "lookup", response: { hits: 1 } } }] },
    ]);
  });

  it("earlier thought text is not sent back, its signature goes on the next part; a tool error as {error}", async () => {
    await readAll(
      client.generate(
        generateRequest(MODEL, "", {
          messages: [
            makeMessage({ role: "user", content: "q" }),
            makeMessage({
              role: "assistant",
              contents: [
                part({ $case: "reasoning", value: { text: "I should look it up", signature: "c2ln", encrypted: "", summary: false, id: "" } }),
                part({ $case: "text", value: "Looking." }),
              ],
              toolCalls: [{ id: "c1", name: "lookup", arguments: "" }],
            }),
            makeMessage({ role: "tool", toolCallId: "c1", content: "service down", toolError: true }),
          ],
        }),
      ),
    );
    assert.deepEqual(fake.requests[0]!.body.contents.slice(1), [
      {
        role: "model",
        parts: [{ text: "Looking.", thoughtSignature: "c2ln" }, { functionCall: { name: "lookup", args: {} } }],
      },
      { role: "user", parts: [{ functionResponse: { name: "lookup", response: { error: "service down" } } }] },
    ]);
  });

  it("JSON-schema output: responseMimeType + responseSchema in Gemini's subset; JSON object mode; sampling fields", async () => {
    fake.script = () => ({ chunks: textAnswer(['{"name":"Ada",', '"age":36}']) });
    const schema = {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      additionalProperties: false,
      $defs: { tag: { type: "string", format: "email", maxLength: 20 } },
      properties: {
        name: { type: "string", description: "full name" },
        age: { type: "integer", minimum: 0, exclusiveMaximum: 200, format: "int32" },
        tags: { type: "array", items: { $ref: "#/$defs/tag" }, uniqueItems: true },
        kind: { const: "person" },
        nick: { anyOf: [{ type: "string" }, { type: "null" }] },
      },
      required: ["name", "age"],
    };
    const { chunks } = await readAll(
      client.generate(
        generateRequest(MODEL, "who?", {
          responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "person", description: "", schema, strict: true },
          topK: 40,
          seed: 7,
          maxTokens: 100,
          presencePenalty: 0.5,
        }),
      ),
    );
    assert.deepEqual(JSON.parse(text(chunks)), { name: "Ada", age: 36 });
    assert.deepEqual(fake.requests[0]!.body.generationConfig, {
      maxOutputTokens: 100,
      topK: 40,
      seed: 7,
      presencePenalty: 0.5,
      responseMimeType: "application/json",
      responseSchema: {
        type: "OBJECT",
        properties: {
          name: { type: "STRING", description: "full name" },
          age: { type: "INTEGER", minimum: 0, format: "int32" },
          tags: { type: "ARRAY", items: { type: "STRING", maxLength: 20 } },
          kind: { type: "STRING", enum: ["person"], format: "enum" },
          nick: { type: "STRING", nullable: true },
        },
        required: ["name", "age"],
      },
    });
    await readAll(client.generate(generateRequest(MODEL, "json", { responseFormat: { type: ResponseFormat_Type.TYPE_JSON_OBJECT, name: "", description: "", schema: undefined, strict: false } })));
    assert.deepEqual(fake.requests[1]!.body.generationConfig, { responseMimeType: "application/json" });
  });

  it("images, audio and files from typed content parts become inlineData / fileData", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
    await readAll(
      client.generate(
        generateRequest(MODEL, "", {
          messages: [
            makeMessage({
              role: "user",
              content: "describe",
              contents: [
                part({ $case: "text", value: "describe" }),
                part({ $case: "image", value: { url: "", data: png, mediaType: "image/png", detail: "" } }),
                part({ $case: "image", value: { url: "gs://bucket/cat.webp", data: Buffer.alloc(0), mediaType: "", detail: "" } }),
                part({ $case: "inputAudio", value: { data: Buffer.from("RIFF"), format: "wav" } }),
                part({ $case: "file", value: { url: "https://example.com/a.pdf", data: Buffer.alloc(0), mediaType: "application/pdf", filename: "", fileId: "", text: "", title: "", context: "", citations: false } }),
              ],
            }),
          ],
        }),
      ),
    );
    assert.deepEqual(fake.requests[0]!.body.contents[0].parts, [
      { text: "describe" },
      { inlineData: { mimeType: "image/png", data: png.toString("base64") } },
      { fileData: { mimeType: "image/webp", fileUri: "gs://bucket/cat.webp" } },
      { inlineData: { mimeType: "audio/wav", data: Buffer.from("RIFF").toString("base64") } },
      { fileData: { mimeType: "application/pdf", fileUri: "https://example.com/a.pdf" } },
    ]);
  });

  it("inline bytes without a media type are refused before the upstream, naming the part", async () => {
    const { error } = await readAll(
      client.generate(
        generateRequest(MODEL, "", {
          messages: [makeMessage({ role: "user", contents: [part({ $case: "image", value: { url: "", data: Buffer.from([1]), mediaType: "", detail: "" } })] })],
        }),
      ),
    );
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.match(error?.details ?? "", /messages\[0\]\.content\[0\]/);
    assert.equal(fake.requests.length, 0);
  });

  it("an error after content is an in-band error chunk; a cut body a DATA_LOSS error chunk", async () => {
    fake.script = () => ({ chunks: [chunk([{ text: "par" }]), { error: { code: 429, message: "Resource exhausted", status: "RESOURCE_EXHAUSTED" } }] });
    const a = await readAll(client.generate(generateRequest(MODEL)));
    assert.equal(a.error, undefined);
    assert.deepEqual(cases(a.chunks), ["text", "error"]);
    const e = a.chunks[1]!.payload;
    assert.ok(e?.$case === "error");
    assert.equal(e.value.grpcCode, status.RESOURCE_EXHAUSTED);

    fake.script = () => ({ chunks: [chunk([{ text: "par" }])] });
    const b = await readAll(client.generate(generateRequest(MODEL)));
    const t = b.chunks.at(-1)!.payload;
    assert.ok(t?.$case === "error");
    assert.equal(t.value.grpcCode, status.DATA_LOSS);
    assert.equal(t.value.code, "upstream_truncated");
  });

  it("a cancelled call aborts the upstream request", async () => {
    fake.script = () => ({ chunks: textAnswer(Array.from({ length: 100 }, (_, i) => `w${i}`)), delayMs: 20 });
    const aborted = fake.nextAbort();
    const call = client.generate(generateRequest(MODEL));
    call.on("error", () => undefined);
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.cancel();
    const rec = await aborted;
    assert.ok(rec.abortedAt !== undefined);
  });
});
