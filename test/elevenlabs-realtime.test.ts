/**
 * The realtime door with a phone-style profile — Deepgram recognition, a
 * text model behind a fake OpenAI upstream, ElevenLabs speech — driven with
 * `ws`: a voice turn end to end (the turn's audio streamed to Deepgram's
 * live socket, the reply's text streamed to ElevenLabs' input-streaming
 * socket as it is written), barge-in closing the ElevenLabs socket with no
 * audio of the cancelled response after its `response.done`, G.711 output
 * passed through from `ulaw_8000`, failures before and after the first
 * audio, and the sentence-by-sentence HTTP path when input streaming is off.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { ELEVENLABS_KEY, startFakeElevenLabs, type FakeElevenLabs } from "./helpers/fake-elevenlabs.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { appendAudio, audioOf, RealtimeTestClient, realtimeUrl, silence, tone } from "./helpers/realtime.js";

const VOICE_ID = "21m00Tcm4TlvDq8ikWAM";
let openai: FakeUpstream;
let deepgram: FakeDeepgram;
let eleven: FakeElevenLabs;
let tg: TestGateway;

function gatewayConfig(streamInput?: boolean): Record<string, any> {
  return {
    grpc: { enabled: false },
    providers: {
      openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-upstream" },
      deepgram: { type: "deepgram", baseUrl: deepgram.baseUrl, apiKey: DEEPGRAM_KEY },
      elevenlabs: {
        type: "elevenlabs",
        baseUrl: eleven.baseUrl,
        apiKey: ELEVENLABS_KEY,
        voices: { alloy: VOICE_ID },
        ...(streamInput === undefined ? {} : { streamInput }),
      },
    },
    realtime: {
      // Tones stand in for speech here: the energy VAD hears them, Silero (rightly) does not.
      vad: { engine: "energy" },
      profiles: { "phone/agent": { stt: "deepgram/nova-3", text: "openai/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" } },
    },
  };
}

before(async () => {
  openai = await startFakeOpenAi();
  deepgram = await startFakeDeepgram();
  eleven = await startFakeElevenLabs();
  tg = await startTestGateway(gatewayConfig());
});
after(async () => {
  await tg.close();
  await Promise.all([openai.close(), deepgram.close(), eleven.close()]);
});

async function open(origin = tg.origin): Promise<RealtimeTestClient> {
  const c = await RealtimeTestClient.connect(realtimeUrl(origin, "phone/agent"));
  await c.next("session.created");
  return c;
}

function askText(c: RealtimeTestClient, text = "Talk to me."): void {
  c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  c.send({ type: "response.create" });
}

describe("phone/agent: deepgram → text model → elevenlabs", () => {
  it("a voice turn: the turn's audio to Deepgram live, the reply's text to ElevenLabs as it is written, its audio back", async () => {
    openai.script = () => ({ events: chatEvents(["Sure", ", I can", " help. What", " do you need?"]), delayMs: 20 });
    const c = await open();
    const dgSession = deepgram.nextSession();
    const elStream = eleven.nextStream();
    appendAudio(c, Buffer.concat([silence(300), tone(800), silence(900)]));
    await c.next("input_audio_buffer.speech_started");
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    assert.equal(t.transcript, "Hello from Deepgram.");
    assert.deepEqual(c.all("conversation.item.input_audio_transcription.delta").map((e) => e.delta), ["Hello from Deepgram."]);
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    assert.equal(c.all("response.output_audio_transcript.done")[0]!.transcript, "Sure, I can help. What do you need?");

    const dg = await dgSession;
    assert.equal(dg.url.searchParams.get("encoding"), "linear16");
    assert.equal(dg.url.searchParams.get("sample_rate"), "24000");
    assert.equal(dg.url.searchParams.get("model"), "nova-3");
    // The turn ends with Finalize; the socket stays open for the session's next turn.
    assert.deepEqual(dg.control.filter((m) => !m.includes("KeepAlive")), ['{"type":"Finalize"}']);
    assert.equal(openai.requests.at(-1)!.body.messages.at(-1).content, "Hello from Deepgram.");

    const el = await elStream;
    assert.equal(el.url.pathname, `/v1/text-to-speech/${VOICE_ID}/stream-input`);
    assert.equal(el.url.searchParams.get("model_id"), "eleven_flash_v2_5");
    assert.equal(el.url.searchParams.get("output_format"), "pcm_24000");
    assert.equal(el.received[0]!.text, " ");
    assert.equal(el.received[0]!.xi_api_key, ELEVENLABS_KEY);
    assert.ok("voice_settings" in el.received[0]!);
    const texts = el.received.slice(1);
    assert.deepEqual(texts.slice(0, -1).map((m) => m.text), ["Sure", ", I can", " help. What", " do you need?"]);
    assert.ok(texts.slice(0, -1).every((m) => m.try_trigger_generation === true));
    assert.deepEqual(texts.filter((m) => m.flush).map((m) => m.text), [" do you need?"]);
    assert.deepEqual(texts.at(-1), { text: "" });
    assert.deepEqual(audioOf(c, done.response.id), Buffer.concat(el.audio));
    assert.ok(audioOf(c, done.response.id).length > 0);
    assert.deepEqual((await el.closed).byClient, false);
    assert.deepEqual(c.invalid, []);
    await c.close();
    // The session ended: CloseStream, then the socket closes.
    await dg.closed;
    assert.equal(dg.control.at(-1), '{"type":"CloseStream"}');
  });

  it("barge-in: speech during a response cancels it, the ElevenLabs socket is closed, no audio of it after its response.done", async () => {
    openai.script = () => ({ events: chatEvents(Array.from({ length: 60 }, (_, i) => `Sentence number ${i} is here. `)), delayMs: 30 });
    eleven.script = { pieceDelayMs: 20 };
    try {
      const c = await open();
      const elStream = eleven.nextStream();
      askText(c);
      const first = await c.next("response.output_audio.delta");
      const el = await elStream;
      appendAudio(c, Buffer.concat([silence(200), tone(600), silence(900)]));
      await c.next("input_audio_buffer.speech_started");
      const done = await c.next("response.done", (e) => e.response.id === first.response_id);
      assert.equal(done.response.status, "cancelled");
      assert.equal(done.response.status_details.reason, "turn_detected");
      const closed = await el.closed;
      assert.equal(closed.byClient, true, "the gateway closed the ElevenLabs socket before isFinal");
      assert.equal(el.received.some((m) => m.text === ""), false, "the input was not ended: the socket was closed");
      const doneAt = c.events.indexOf(done);
      const late = c.events.slice(doneAt + 1).filter((e) => e.type.startsWith("response.") && e.response_id === first.response_id);
      assert.deepEqual(late, []);
      await c.close();
    } finally {
      eleven.script = {};
    }
  });

  it("a client that goes away mid-turn and mid-response closes the Deepgram (CloseStream) and ElevenLabs sockets", async () => {
    openai.script = () => ({ events: chatEvents(Array.from({ length: 40 }, (_, i) => `Sentence ${i}. `)), delayMs: 30 });
    eleven.script = { pieceDelayMs: 20 };
    try {
      const c = await open();
      // No barge-in: the response must still be running when the client goes.
      c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", interrupt_response: false } } } } });
      await c.next("session.updated");
      const elStream = eleven.nextStream();
      askText(c);
      await c.next("response.output_audio.delta");
      const dgSession = deepgram.nextSession();
      appendAudio(c, Buffer.concat([silence(200), tone(400)]));
      await c.next("input_audio_buffer.speech_started");
      const dg = await dgSession;
      assert.equal(c.all("response.done").length, 0);
      await c.close();
      assert.equal((await (await elStream).closed).byClient, true);
      await dg.closed;
      // The session's recognizer socket is ended as Deepgram documents (CloseStream), and closed without waiting for it.
      assert.equal(dg.control.at(-1), '{"type":"CloseStream"}');
      assert.equal(dg.control.includes('{"type":"Finalize"}'), false, "the turn was cut, not finished");
    } finally {
      eleven.script = {};
    }
  });

  it("audio/pcmu output: ElevenLabs' ulaw_8000 bytes are sent as they are (no decode, no resampling)", async () => {
    openai.script = () => ({ events: chatEvents(["Your call", " is important."]) });
    const c = await open();
    c.send({ type: "session.update", session: { type: "realtime", audio: { output: { format: { type: "audio/pcmu" } } } } });
    await c.next("session.updated");
    const elStream = eleven.nextStream();
    askText(c);
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    const el = await elStream;
    assert.equal(el.url.searchParams.get("output_format"), "ulaw_8000");
    const audio = audioOf(c, done.response.id);
    assert.ok(audio.length > 0);
    assert.deepEqual(audio, Buffer.concat(el.audio));
    assert.ok(c.all("response.output_audio.delta").every((e) => Buffer.from(e.delta, "base64").length <= 1600), "200 ms deltas");
    await c.close();
  });

  it("an ElevenLabs error before the first audio fails the response with an error event", async () => {
    openai.script = () => ({ events: chatEvents(["Hello."]) });
    eleven.script = { errorMessage: { message: "Voice quota exceeded", error: "quota_exceeded", code: 1008 } };
    try {
      const c = await open();
      askText(c);
      const err = await c.next("error");
      assert.match(err.error.message, /Voice quota exceeded/);
      const done = await c.next("response.done");
      assert.equal(done.response.status, "failed");
      await c.close();
    } finally {
      eleven.script = {};
    }
  });

  it("a socket closed mid-stream after the first audio fails the response; the audio already sent stays", async () => {
    openai.script = () => ({ events: chatEvents(["This is a fairly long reply, ", "spoken in several pieces."]) });
    eleven.script = { closeAfterPieces: 1 };
    try {
      const c = await open();
      askText(c);
      const done = await c.next("response.done");
      assert.equal(done.response.status, "failed");
      assert.ok(audioOf(c, done.response.id).length > 0);
      assert.match(c.all("error").at(-1)!.error.message, /close 1011/);
      await c.close();
    } finally {
      eleven.script = {};
    }
  });

  it("streamInput: false speaks sentence by sentence over the HTTP streaming endpoint", async () => {
    const gw = await startTestGateway(gatewayConfig(false));
    try {
      openai.script = () => ({ events: chatEvents(["One. Two", " is here. Three."]) });
      const before = eleven.requests.length;
      const streams = eleven.streams.length;
      const c = await open(gw.origin);
      askText(c);
      const done = await c.next("response.done");
      assert.equal(done.response.status, "completed");
      assert.deepEqual(eleven.requests.slice(before).map((r) => r.body.text), ["One.", "Two is here.", "Three."]);
      assert.equal(eleven.streams.length, streams);
      assert.deepEqual(audioOf(c, done.response.id), Buffer.concat(eleven.requests.slice(before).flatMap((r) => r.audio)));
      await c.close();
    } finally {
      await gw.close();
    }
  });
});
