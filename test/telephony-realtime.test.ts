/**
 * Telephony audio through the realtime door with streaming speech
 * providers, no needless resampling (issue 17, item 5): a session whose
 * input is `audio/pcmu` / `audio/pcma` and whose recognizer is Deepgram
 * sends the G.711 bytes to Deepgram as they came (`encoding=mulaw|alaw`,
 * `sample_rate=8000`) while the VAD hears a decoded copy, and the
 * transcript comes back; a pcmu / pcma output plays ElevenLabs'
 * `ulaw_8000` / `alaw_8000` bytes as ElevenLabs sent them.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeAlaw, encodeUlaw } from "../src/doors/ws/audio/g711.js";
import { Resampler } from "../src/audio/resample.js";
import { toSamples } from "../src/audio/pcm.js";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { ELEVENLABS_KEY, startFakeElevenLabs, type FakeElevenLabs } from "./helpers/fake-elevenlabs.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { audioOf, RealtimeTestClient, realtimeUrl, silence, tone } from "./helpers/realtime.js";

let openai: FakeUpstream;
let deepgram: FakeDeepgram;
let eleven: FakeElevenLabs;
let tg: TestGateway;

before(async () => {
  openai = await startFakeOpenAi();
  deepgram = await startFakeDeepgram();
  eleven = await startFakeElevenLabs();
  tg = await startTestGateway({
    grpc: { enabled: false },
    providers: {
      openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-upstream" },
      deepgram: { type: "deepgram", baseUrl: deepgram.baseUrl, apiKey: DEEPGRAM_KEY },
      elevenlabs: { type: "elevenlabs", baseUrl: eleven.baseUrl, apiKey: ELEVENLABS_KEY, voices: { alloy: "voice1" } },
    },
    realtime: {
      // Tones stand in for speech: the energy VAD hears them, Silero (rightly) does not.
      vad: { engine: "energy" },
      profiles: { "phone/agent": { stt: "deepgram/nova-3", text: "openai/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "alloy" } },
    },
  });
});
after(async () => {
  await tg.close();
  await Promise.all([openai.close(), deepgram.close(), eleven.close()]);
});

/** 24 kHz pcm16 → 8 kHz G.711 bytes, as a phone line carries them. */
function g711(format: "audio/pcmu" | "audio/pcma", pcm24k: Buffer): Buffer {
  const s = new Resampler(24_000, 8000).push(toSamples(pcm24k));
  return Buffer.from(format === "audio/pcmu" ? encodeUlaw(s) : encodeAlaw(s));
}

async function phoneSession(input: string, output = "audio/pcm"): Promise<RealtimeTestClient> {
  const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "phone/agent"));
  await c.next("session.created");
  c.send({ type: "session.update", session: { type: "realtime", audio: { input: { format: { type: input } }, output: { format: { type: output } } } } });
  await c.next("session.updated");
  return c;
}

/** Sends `bytes` in 20 ms appends (160 bytes of G.711). */
function appendG711(c: RealtimeTestClient, bytes: Buffer): void {
  for (let i = 0; i < bytes.length; i += 160) c.send({ type: "input_audio_buffer.append", audio: bytes.subarray(i, i + 160).toString("base64") });
}

describe("telephony audio with Deepgram and ElevenLabs", () => {
  for (const [format, encoding] of [
    ["audio/pcmu", "mulaw"],
    ["audio/pcma", "alaw"],
  ] as const) {
    it(`${format} input: Deepgram gets encoding=${encoding}&sample_rate=8000 and the G.711 bytes as the client sent them; the transcript comes back`, async () => {
      openai.script = () => ({ events: chatEvents(["Hi."]) });
      const c = await phoneSession(format);
      const dgSession = deepgram.nextSession();
      const sent = g711(format, Buffer.concat([silence(300), tone(800), silence(900)]));
      appendG711(c, sent);
      await c.next("input_audio_buffer.speech_started");
      const t = await c.next("conversation.item.input_audio_transcription.completed");
      assert.equal(t.transcript, "Hello from Deepgram.");
      const dg = await dgSession;
      assert.equal(dg.url.searchParams.get("encoding"), encoding);
      assert.equal(dg.url.searchParams.get("sample_rate"), "8000");
      assert.equal(dg.url.searchParams.get("channels"), "1");
      const heard = Buffer.concat(dg.audio);
      // One byte a sample at 8 kHz: the turn from its prefix padding to its end, at least the 800 ms of speech.
      assert.ok(heard.length >= 6400, `${heard.length} bytes`);
      assert.ok(heard.length <= sent.length);
      const at = sent.indexOf(heard);
      assert.ok(at >= 0, "Deepgram heard a contiguous stretch of the client's bytes, unchanged");
      assert.equal(heard.subarray(0, 4).toString("ascii") === "RIFF", false, "no WAV header");
      await c.next("response.done");
      await c.close();
    });
  }

  for (const [format, name] of [
    ["audio/pcmu", "ulaw_8000"],
    ["audio/pcma", "alaw_8000"],
  ] as const) {
    it(`${format} in and out: a voice turn whose reply plays ElevenLabs' ${name} bytes as they came`, async () => {
      openai.script = () => ({ events: chatEvents(["Your call", " is important."]) });
      const c = await phoneSession(format, format);
      const elStream = eleven.nextStream();
      appendG711(c, g711(format, Buffer.concat([silence(300), tone(800), silence(900)])));
      const t = await c.next("conversation.item.input_audio_transcription.completed");
      assert.equal(t.transcript, "Hello from Deepgram.");
      const done = await c.next("response.done");
      assert.equal(done.response.status, "completed");
      assert.equal(done.response.audio.output.format.type, format);
      const el = await elStream;
      assert.equal(el.url.searchParams.get("output_format"), name);
      const audio = audioOf(c, done.response.id);
      assert.ok(audio.length > 0);
      assert.deepEqual(audio, Buffer.concat(el.audio));
      await c.close();
    });
  }

  it("a change of input format in the middle of a turn: the turn's recognizer hears the rest converted to its format", async () => {
    openai.script = () => ({ events: chatEvents(["Hi."]) });
    const c = await phoneSession("audio/pcm");
    const dgSession = deepgram.nextSession();
    const first = Buffer.concat([silence(300), tone(400)]);
    for (let i = 0; i < first.length; i += 960) c.send({ type: "input_audio_buffer.append", audio: first.subarray(i, i + 960).toString("base64") });
    await c.next("input_audio_buffer.speech_started");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { format: { type: "audio/pcmu" } } } } });
    await c.next("session.updated");
    appendG711(c, g711("audio/pcmu", Buffer.concat([tone(400), silence(900)])));
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    assert.equal(t.transcript, "Hello from Deepgram.");
    const dg = await dgSession;
    assert.equal(dg.url.searchParams.get("encoding"), "linear16");
    // pcm16 at 24 kHz throughout: the µ-law part arrived as 48 bytes a ms, not 8.
    const heard = Buffer.concat(dg.audio).length;
    assert.ok(heard >= (400 + 400 + 500) * 48, `${heard} bytes`);
    assert.equal(heard % 2, 0);
    await c.next("response.done");
    await c.close();
  });

  it("pcm16 input goes to Deepgram as linear16 at 24 kHz, no WAV header, bytes unchanged", async () => {
    openai.script = () => ({ events: chatEvents(["Hi."]) });
    const c = await phoneSession("audio/pcm");
    const dgSession = deepgram.nextSession();
    const sent = Buffer.concat([silence(300), tone(800), silence(900)]);
    for (let i = 0; i < sent.length; i += 960) c.send({ type: "input_audio_buffer.append", audio: sent.subarray(i, i + 960).toString("base64") });
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    assert.equal(t.transcript, "Hello from Deepgram.");
    const dg = await dgSession;
    assert.equal(dg.url.searchParams.get("encoding"), "linear16");
    assert.equal(dg.url.searchParams.get("sample_rate"), "24000");
    const heard = Buffer.concat(dg.audio);
    assert.ok(heard.length >= 800 * 48);
    assert.ok(sent.indexOf(heard) >= 0);
    await c.next("response.done");
    await c.close();
  });
});
