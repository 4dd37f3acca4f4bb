/**
 * Keeps the fake Gemini upstream honest: Google's own SDK (`@google/genai`)
 * is pointed at it and must parse its streams (SSE with CRLF separators),
 * its non-streamed answers, its model list and its error bodies as it
 * parses Google's. If the fake drifted from the wire format, these fail.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ApiError, FunctionCallingConfigMode, GoogleGenAI, Type } from "@google/genai";
import { JWT } from "google-auth-library";
import { ResponseFormat_Type } from "../src/gen/spillway/v1/request.js";
import { makeGenerateRequest, makeMessage } from "../src/engine/requests.js";
import { geminiBody } from "../src/providers/gemini/gemini-request.js";
import { chunk, startFakeGemini, textAnswer, usage, type FakeGemini } from "./helpers/fake-gemini.js";

describe("fake Gemini vs @google/genai", () => {
  let fake: FakeGemini;
  let ai: GoogleGenAI;
  before(async () => {
    fake = await startFakeGemini();
    fake.apiKey = "AIza-sdk";
    ai = new GoogleGenAI({ apiKey: "AIza-sdk", httpOptions: { baseUrl: fake.baseUrl } });
  });
  after(() => fake.close());

  it("parses a streamed answer: text in order, function calls whole, thoughts, usage and finishReason on the last chunk", async () => {
    fake.script = () => ({
      chunks: [
        chunk([{ text: "thinking…", thought: true }]),
        chunk([{ text: "Hel" }], undefined, usage(5, 1)),
        chunk([{ text: "lo" }, { functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "c2ln" }], "STOP", usage(5, 7, { thoughts: 3 })),
      ],
    });
    const stream = await ai.models.generateContentStream({ model: "gemini-fake-1", contents: "hi" });
    const got = [];
    for await (const c of stream) got.push(c);
    assert.equal(got.length, 3);
    assert.equal(got.map((c) => c.text ?? "").join(""), "Hello");
    assert.equal(got[0]!.candidates![0]!.content!.parts![0]!.thought, true);
    assert.deepEqual(got[2]!.functionCalls, [{ name: "get_weather", args: { city: "Paris" } }]);
    assert.equal(got[2]!.candidates![0]!.content!.parts![1]!.thoughtSignature, "c2ln");
    assert.equal(got[2]!.candidates![0]!.finishReason, "STOP");
    assert.equal(got[2]!.usageMetadata!.thoughtsTokenCount, 3);
    const req = fake.requests.at(-1)!;
    assert.equal(req.url, "/v1beta/models/gemini-fake-1:streamGenerateContent?alt=sse");
    assert.equal(req.headers["x-goog-api-key"], "AIza-sdk");
  });

  it("parses a non-streamed answer and the model list", async () => {
    fake.script = () => ({ chunks: textAnswer(["one", " two"], [4, 2]) });
    const r = await ai.models.generateContent({ model: "gemini-fake-1", contents: "hi" });
    assert.equal(r.text, "one two");
    assert.equal(r.usageMetadata!.candidatesTokenCount, 2);
    const pager = await ai.models.list();
    const names = [];
    for await (const m of pager) names.push(m.name);
    assert.deepEqual(names, ["models/gemini-fake-1", "models/embedding-fake"]);
  });

  it("raises ApiError with Google's status for error bodies, streamed or not", async () => {
    fake.script = () => ({ status: 429, errorMessage: "Resource has been exhausted (e.g. check quota)." });
    await assert.rejects(ai.models.generateContentStream({ model: "gemini-fake-1", contents: "hi" }), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 429);
      assert.match(e.message, /RESOURCE_EXHAUSTED/);
      return true;
    });
    fake.script = () => ({ status: 503, errorMessage: "The model is overloaded. Please try again later." });
    await assert.rejects(ai.models.generateContent({ model: "gemini-fake-1", contents: "hi" }), (e: unknown) => e instanceof ApiError && e.status === 503);
    const bad = new GoogleGenAI({ apiKey: "wrong", httpOptions: { baseUrl: fake.baseUrl } });
    await assert.rejects(bad.models.generateContent({ model: "gemini-fake-1", contents: "hi" }), (e: unknown) => e instanceof ApiError && e.status === 400 && /API_KEY_INVALID/.test(e.message));
  });

  it("an error mid-stream, framed or bare, ends the SDK's stream with an error", async () => {
    const err = { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } };
    fake.script = () => ({ chunks: [chunk([{ text: "par" }]), JSON.stringify(err)], delayMs: 20 });
    const stream = await ai.models.generateContentStream({ model: "gemini-fake-1", contents: "hi" });
    const texts: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of stream) texts.push(c.text ?? "");
      })(),
      (e: unknown) => e instanceof ApiError && e.status === 500,
    );
    assert.deepEqual(texts, ["par"]);
    fake.script = () => ({ chunks: [chunk([{ text: "par" }]), err], delayMs: 20 });
    const framed = await ai.models.generateContentStream({ model: "gemini-fake-1", contents: "hi" });
    const got = [];
    for await (const c of framed) got.push(c);
    // The SDK hands a framed error event on as a response without candidates; Spillway fails the stream on it.
    assert.equal(got.length, 2);
    assert.equal(got[1]!.candidates, undefined);
  });

  it("Spillway's request body is the body Google's SDK sends for the same request", async () => {
    fake.script = () => ({});
    const stream = await ai.models.generateContentStream({
      model: "gemini-fake-1",
      contents: [
        { role: "user", parts: [{ text: "weather?" }] },
        { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp: 20 } } }] },
      ],
      config: {
        systemInstruction: "Be terse.",
        maxOutputTokens: 64,
        temperature: 0.2,
        topP: 0.9,
        topK: 40,
        stopSequences: ["END"],
        seed: 7,
        responseMimeType: "application/json",
        responseSchema: { type: Type.OBJECT, properties: { answer: { type: Type.STRING, nullable: true } }, required: ["answer"] },
        thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 },
        tools: [{ functionDeclarations: [{ name: "get_weather", description: "Weather", parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } } } }] }],
        toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY, allowedFunctionNames: ["get_weather"] } },
      },
    });
    for await (const _ of stream) void _;
    const sdkBody = fake.requests.at(-1)!.body;
    const ours = geminiBody(
      "gemini-fake-1",
      makeGenerateRequest({
        model: "gemini/gemini-fake-1",
        messages: [
          makeMessage({ role: "system", content: "Be terse." }),
          makeMessage({ role: "user", content: "weather?" }),
          makeMessage({ role: "assistant", toolCalls: [{ id: "c1", name: "get_weather", arguments: '{"city":"Paris"}' }] }),
          makeMessage({ role: "tool", toolCallId: "c1", content: '{"temp":20}' }),
        ],
        maxTokens: 64,
        temperature: 0.2,
        topP: 0.9,
        topK: 40,
        stop: ["END"],
        seed: 7,
        responseFormat: { type: ResponseFormat_Type.TYPE_JSON_SCHEMA, name: "a", description: "", strict: true, schema: { type: "object", properties: { answer: { type: ["string", "null"] } }, required: ["answer"] } },
        reasoning: { effort: "low", budgetTokens: 0, summary: "", disabled: false },
        tools: [{ name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false }],
        toolChoice: "get_weather",
      }),
    );
    // The SDK also labels the system instruction with role "user" (optional on the wire).
    delete sdkBody.systemInstruction.role;
    assert.deepEqual(JSON.parse(JSON.stringify(ours)), sdkBody);
  });

  it("without alt=sse the stream is one JSON array of the same responses", async () => {
    fake.script = () => ({ chunks: textAnswer(["a", "b"]) });
    const res = await fetch(`${fake.baseUrl}/v1beta/models/gemini-fake-1:streamGenerateContent`, {
      method: "POST",
      headers: { "x-goog-api-key": "AIza-sdk", "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }),
    });
    const arr = (await res.json()) as Array<{ candidates: Array<{ content: { parts: Array<{ text: string }> } }> }>;
    assert.deepEqual(arr.map((c) => c.candidates[0]!.content.parts[0]!.text), ["a", "b"]);
  });
});

describe("fake Vertex AI vs @google/genai and google-auth-library", () => {
  it("the SDK in Vertex mode gets a token from the fake's token endpoint and parses its stream", async () => {
    const fake = await startFakeGemini(() => ({ chunks: textAnswer(["vertex", " says hi"], [3, 2]) }));
    try {
      const sa = JSON.parse(readFileSync(fake.serviceAccountFile(), "utf8")) as { client_email: string; private_key: string };
      const jwt = new JWT({ email: sa.client_email, key: sa.private_key, scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
      // google-auth-library posts service-account grants to Google's fixed endpoint: point it at the fake.
      jwt.transporter.interceptors.request.add({
        resolved: (o) => {
          if (String(o.url) === "https://oauth2.googleapis.com/token") o.url = new URL(fake.tokenUrl);
          return Promise.resolve(o);
        },
      });
      const ai = new GoogleGenAI({ vertexai: true, project: "fake-project", location: "us-central1", httpOptions: { baseUrl: fake.baseUrl }, googleAuthOptions: { authClient: jwt } });
      const stream = await ai.models.generateContentStream({ model: "gemini-fake-1", contents: "hi" });
      let text = "";
      for await (const c of stream) text += c.text ?? "";
      assert.equal(text, "vertex says hi");
      assert.equal(fake.tokens.length, 1);
      const req = fake.requests.find((r) => r.url.includes(":streamGenerateContent"))!;
      assert.match(req.url, /^\/v1(beta1)?\/projects\/fake-project\/locations\/us-central1\/publishers\/google\/models\/gemini-fake-1:streamGenerateContent\?alt=sse$/);
      assert.equal(req.headers["authorization"], "Bearer ya29.fake-1");
    } finally {
      await fake.close();
    }
  });
});
