/**
 * A Gemini model as the text model of a realtime voice profile: the
 * realtime door's responses stream Gemini's text, and its whole function
 * calls become function_call items whose results go back to Gemini as
 * functionResponse parts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chunk, startFakeGemini, textAnswer, usage, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

describe("gemini behind a realtime profile", () => {
  let fake: FakeGemini;
  let tg: TestGateway;
  before(async () => {
    fake = await startFakeGemini();
    tg = await startTestGateway({
      providers: { gemini: { type: "gemini", baseUrl: fake.baseUrl, apiKey: "AIza-rt" } },
      realtime: { profiles: { "acme/gemini-voice": { stt: "local/stt", text: "gemini/gemini-fake-1", tts: "local/tts", instructions: "Be brief." } } },
    });
  });
  after(async () => {
    await tg.close();
    await fake.close();
  });

  it("text responses and a function call round trip", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "acme/gemini-voice"));
    await c.next("session.created");
    const tool = { type: "function", name: "get_weather", description: "Weather of a city.", parameters: { type: "object", properties: { city: { type: "string" } } } };
    c.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"], tools: [tool], tool_choice: "auto" } });
    await c.next("session.updated");

    fake.script = () => ({ chunks: [chunk([{ functionCall: { name: "get_weather", args: { city: "Paris" } } }], "STOP", usage(9, 4))] });
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Weather in Paris?" }] } });
    c.send({ type: "response.create" });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    const item = done.response.output[0];
    assert.deepEqual([item.type, item.name, JSON.parse(item.arguments)], ["function_call", "get_weather", { city: "Paris" }]);
    assert.match(item.call_id, /^call_/);
    assert.deepEqual(fake.requests.at(-1)!.body.systemInstruction, { parts: [{ text: "Be brief." }] });

    fake.script = () => ({ chunks: textAnswer(["It is", " 20 degrees."]) });
    c.send({ type: "conversation.item.create", item: { type: "function_call_output", call_id: item.call_id, output: '{"temp":20}' } });
    await c.next("conversation.item.created", (e) => e.item.type === "function_call_output");
    c.send({ type: "response.create" });
    const second = await c.next("response.done", (e) => e.response.id !== done.response.id);
    assert.equal(second.response.output[0].content[0].text, "It is 20 degrees.");
    assert.deepEqual(fake.requests.at(-1)!.body.contents.slice(-2), [
      { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "Paris" } } }] },
      { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp: 20 } } }] },
    ]);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});
