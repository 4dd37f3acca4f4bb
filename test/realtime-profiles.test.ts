/**
 * Voice profiles from config (a cascade mixing providers: local speech with
 * a text model behind a fake OpenAI upstream), barge-in aborting the upstream
 * request at once, audio items, G.711 input under server VAD, and clearing a
 * turn while it is spoken.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Resampler } from "../src/audio/resample.js";
import { toBytes, toSamples } from "../src/audio/pcm.js";
import { encodeUlaw } from "../src/doors/ws/audio/g711.js";
import { chatChunk, chatEvents, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { startFakeOpenAiAudio } from "./helpers/fake-openai-audio.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { appendAudio, audioOf, RealtimeTestClient, realtimeUrl, silence, speak } from "./helpers/realtime.js";

let fake: FakeUpstream;
let tg: TestGateway;
let utterance: Buffer;

before(async () => {
  fake = await startFakeOpenAi();
  tg = await startTestGateway({
    providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream" } },
    realtime: {
      profiles: {
        "acme/voice": { stt: "local/stt", text: "openai/gpt-fake", tts: "local/tts", voice: "echo", instructions: "Be nice." },
      },
    },
  });
  utterance = await speak(tg.gateway, "Hello there. What is the weather like today?");
});
after(async () => {
  await tg.close();
  await fake.close();
});

async function open(model: string): Promise<RealtimeTestClient> {
  const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, model));
  await c.next("session.created");
  return c;
}

describe("voice profiles", () => {
  it("lists config profiles in /v1/models with the realtime capability", async () => {
    const res = await fetch(`${tg.baseUrl}/models`);
    const data = ((await res.json()) as any).data as Array<{ id: string; capabilities: string[] }>;
    assert.deepEqual(data.find((m) => m.id === "acme/voice")?.capabilities, ["realtime"]);
    assert.equal((await fetch(`${tg.baseUrl}/models/acme/voice`)).status, 200);
  });

  it("a profile from config: its voice and instructions, its text model upstream, speech sentence by sentence", async () => {
    fake.script = () => ({ events: chatEvents(["Sure", ". Here", " it is", "."]) });
    const c = await open("acme/voice");
    const s = c.all("session.created")[0]!.session;
    assert.equal(s.model, "acme/voice");
    assert.equal(s.audio.output.voice, "echo");
    assert.equal(s.instructions, "Be nice.");
    assert.equal(s.audio.input.transcription.model, "local/stt");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Tell me." }] } });
    c.send({ type: "response.create" });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.equal(c.all("response.output_audio_transcript.delta").map((e) => e.delta).join(""), "Sure. Here it is.");
    assert.ok(audioOf(c, done.response.id).length > 0);
    const body = fake.requests.at(-1)!.body;
    assert.equal(body.model, "gpt-fake");
    assert.deepEqual(
      body.messages.map((m: any) => [m.role, m.content]),
      [
        ["system", "Be nice."],
        ["user", "Tell me."],
      ],
    );
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("speech starts while the text model is still writing (sentence by sentence)", async () => {
    fake.script = () => ({ events: chatEvents(Array.from({ length: 8 }, (_, i) => `Sentence ${i + 1} is here. `)), delayMs: 80 });
    const c = await open("acme/voice");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Talk." }] } });
    c.send({ type: "response.create" });
    await c.next("response.done");
    const types = c.types();
    const firstAudio = types.indexOf("response.output_audio.delta");
    const lastText = types.lastIndexOf("response.output_audio_transcript.delta");
    assert.ok(firstAudio >= 0 && firstAudio < lastText, `first audio at ${firstAudio}, last text at ${lastText}`);
    await c.close();
  });

  it("barge-in aborts the upstream text request at once", async () => {
    fake.script = () => ({ events: chatEvents(Array.from({ length: 200 }, (_, i) => `Sentence ${i}. `)), delayMs: 30 });
    const c = await open("acme/voice");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Talk." }] } });
    c.send({ type: "response.create" });
    const first = await c.next("response.output_audio.delta");
    const aborted = fake.nextAbort();
    appendAudio(c, Buffer.concat([silence(200), utterance, silence(900)]));
    await c.next("input_audio_buffer.speech_started");
    const done = await c.next("response.done", (e) => e.response.id === first.response_id);
    assert.equal(done.response.status_details.reason, "turn_detected");
    const req = await aborted;
    assert.ok(req.abortedAt !== undefined);
    await c.close();
  });

  it("an unknown session.model names the realtime models", async () => {
    const c = await open("local/realtime");
    c.send({ type: "session.update", session: { type: "realtime", model: "acme/none" } });
    const err = await c.next("error");
    assert.equal(err.error.param, "session.model");
    assert.match(err.error.message, /acme\/voice/);
    c.send({ type: "session.update", session: { type: "realtime", model: "acme/voice" } });
    const u = await c.next("session.updated");
    assert.equal(u.session.model, "acme/voice");
    await c.close();
  });
});

describe("audio items and G.711 input", () => {
  it("conversation.item.create with input_audio is transcribed", async () => {
    const c = await open("local/realtime");
    c.send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_audio", audio: utterance.toString("base64") }] },
    });
    const created = await c.next("conversation.item.created");
    const t = await c.next("conversation.item.input_audio_transcription.completed", (e) => e.item_id === created.item.id);
    assert.ok(t.transcript.length > 0);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("audio/pcmu input under server VAD: a spoken turn is detected and transcribed", async () => {
    const c = await open("local/realtime");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { format: { type: "audio/pcmu" } } } } });
    await c.next("session.updated");
    const pcm8k = new Resampler(24_000, 8000).push(toSamples(Buffer.concat([silence(300), utterance, silence(900)])));
    const ulaw = Buffer.from(encodeUlaw(pcm8k));
    for (let i = 0; i < ulaw.length; i += 160) c.send({ type: "input_audio_buffer.append", audio: ulaw.subarray(i, i + 160).toString("base64") });
    await c.next("input_audio_buffer.speech_started");
    await c.next("input_audio_buffer.speech_stopped");
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    assert.ok(t.transcript.length > 0);
    assert.ok(toBytes(pcm8k).length > 0);
    await c.close();
  });

  it("clearing the buffer while the user speaks drops that turn (no commit, no transcription)", async () => {
    const c = await open("local/realtime");
    appendAudio(c, Buffer.concat([silence(200), utterance.subarray(0, 48_000)]));
    const started = await c.next("input_audio_buffer.speech_started");
    c.send({ type: "input_audio_buffer.clear" });
    await c.next("input_audio_buffer.cleared");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(c.all("input_audio_buffer.committed").length, 0);
    assert.equal(c.events.filter((e) => e.item_id === started.item_id && String(e.type).includes("transcription")).length, 0);
    assert.equal(tg.gateway.engine.admission.openStreams, 0, "the turn's transcription was cancelled");
    await c.close();
  });
});

describe("a profile of upstream speech models", () => {
  it("openai transcription + local text + openai speech: the turn's audio is uploaded as WAV, upstream deltas and audio come through", async () => {
    const speechBytes = Buffer.alloc(4800, 1);
    const up = await startFakeOpenAiAudio(speechBytes);
    const gw = await startTestGateway({
      providers: { openai: { type: "openai", baseUrl: up.baseUrl, apiKey: "sk-upstream" } },
      realtime: { profiles: { "cloud/voice": { stt: "openai/gpt-4o-transcribe", text: "local/echo", tts: "openai/gpt-4o-mini-tts" } } },
    });
    try {
      const c = await RealtimeTestClient.connect(realtimeUrl(gw.origin, "cloud/voice"));
      await c.next("session.created");
      appendAudio(c, Buffer.concat([silence(300), utterance, silence(900)]));
      const t = await c.next("conversation.item.input_audio_transcription.completed");
      assert.equal(t.transcript, "Hello from the upstream.");
      assert.deepEqual(
        c.all("conversation.item.input_audio_transcription.delta").map((e) => e.delta),
        ["Hello", " from", " the", " upstream."],
      );
      const done = await c.next("response.done");
      assert.equal(done.response.status, "completed");
      assert.equal(c.all("response.output_audio_transcript.done")[0]!.transcript, "Hello from the upstream.");
      assert.ok(audioOf(c, done.response.id).length > 0);
      const upload = up.requests.find((r) => r.url === "/v1/audio/transcriptions")!;
      assert.equal(upload.body.model, "gpt-4o-transcribe");
      assert.equal(upload.file?.name, "speech.wav");
      assert.equal(upload.file?.bytes.subarray(0, 4).toString("ascii"), "RIFF");
      const speech = up.requests.find((r) => r.url === "/v1/audio/speech")!;
      assert.equal(speech.body.model, "gpt-4o-mini-tts");
      assert.equal(speech.body.response_format, "pcm");
      assert.deepEqual(c.invalid, []);
      await c.close();
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe("function calls", () => {
  it("the text model's tool calls become function_call items; the client's function_call_output feeds the next response", async () => {
    const call = (d: Record<string, unknown>): unknown => chatChunk(null, { tool_calls: [{ index: 0, ...d }] });
    fake.script = () => ({
      events: [
        chatChunk("", { role: "assistant" }),
        call({ id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }),
        call({ function: { arguments: '{"city":' } }),
        call({ function: { arguments: '"Paris"}' } }),
        chatChunk(null, {}, "tool_calls"),
        usageChunk(9, 7),
      ],
    });
    const c = await open("acme/voice");
    const tool = { type: "function", name: "get_weather", description: "Weather of a city.", parameters: { type: "object", properties: { city: { type: "string" } } } };
    c.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"], tools: [tool], tool_choice: "auto" } });
    const updated = await c.next("session.updated");
    assert.deepEqual(updated.session.tools, [tool]);
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Weather in Paris?" }] } });
    c.send({ type: "response.create" });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.equal(done.response.output.length, 1);
    const item = done.response.output[0];
    assert.deepEqual([item.type, item.name, item.call_id, item.arguments], ["function_call", "get_weather", "call_1", '{"city":"Paris"}']);
    assert.deepEqual(c.all("response.function_call_arguments.delta").map((e) => e.delta), ['{"city":', '"Paris"}']);
    const argsDone = c.all("response.function_call_arguments.done")[0]!;
    assert.deepEqual([argsDone.name, argsDone.arguments, argsDone.call_id], ["get_weather", '{"city":"Paris"}', "call_1"]);
    const sent = fake.requests.at(-1)!.body;
    assert.equal(sent.tools[0].function.name, "get_weather");
    assert.equal(sent.tool_choice, "auto");

    fake.script = () => ({ events: chatEvents(["It is 20 degrees."]) });
    c.send({ type: "conversation.item.create", item: { type: "function_call_output", call_id: "call_1", output: '{"temp":20}' } });
    const out = await c.next("conversation.item.created", (e) => e.item.type === "function_call_output");
    assert.equal(out.item.call_id, "call_1");
    c.send({ type: "response.create" });
    const second = await c.next("response.done", (e) => e.response.id !== done.response.id);
    assert.equal(second.response.output[0].content[0].text, "It is 20 degrees.");
    const messages = fake.requests.at(-1)!.body.messages;
    assert.deepEqual(
      messages.slice(-2).map((m: any) => [m.role, m.tool_calls?.[0]?.id ?? m.tool_call_id]),
      [
        ["assistant", "call_1"],
        ["tool", "call_1"],
      ],
    );
    c.send({ type: "session.update", session: { tool_choice: { type: "function", name: "nope" } } });
    assert.equal((await c.next("error")).error.param, "session.tool_choice");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});
