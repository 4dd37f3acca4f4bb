/**
 * A streaming recognizer's endpointing ends a realtime turn: with Deepgram as
 * the session's STT, its `speech_final` ends the turn while the VAD (here set
 * to wait 5 s of silence) still hears it — whichever comes first ends it —
 * and the response follows; nothing is committed twice.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { appendAudio, RealtimeTestClient, realtimeUrl, silence, tone } from "./helpers/realtime.js";

let openai: FakeUpstream;
let deepgram: FakeDeepgram;
let tg: TestGateway;

before(async () => {
  openai = await startFakeOpenAi(() => ({ events: chatEvents(["Got", " it."]) }));
  deepgram = await startFakeDeepgram();
  tg = await startTestGateway({
    grpc: { enabled: false },
    providers: {
      openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk-upstream" },
      deepgram: { type: "deepgram", baseUrl: deepgram.baseUrl, apiKey: DEEPGRAM_KEY },
    },
    // Tones stand in for speech: the energy VAD hears them, Silero (rightly) does not.
    realtime: { vad: { engine: "energy" }, profiles: { "phone/text": { stt: "deepgram/nova-3", text: "openai/gpt-fake", tts: "local/tts" } } },
  });
});
after(async () => {
  await tg.close();
  await Promise.all([openai.close(), deepgram.close()]);
});

describe("Deepgram endpointing and the VAD", () => {
  it("speech_final ends the turn before the VAD's long silence would, and the response follows", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "phone/text"));
    try {
      await c.next("session.created");
      c.send({
        type: "session.update",
        session: { type: "realtime", output_modalities: ["text"], audio: { input: { turn_detection: { type: "server_vad", silence_duration_ms: 5000 } } } },
      });
      await c.next("session.updated");
      // Only 1.2 s of silence after the speech: the VAD alone would not end the turn.
      appendAudio(c, Buffer.concat([silence(300), tone(800), silence(1200)]));
      const started = await c.next("input_audio_buffer.speech_started");
      const stopped = await c.next("input_audio_buffer.speech_stopped");
      assert.equal(stopped.item_id, started.item_id);
      const committed = await c.next("input_audio_buffer.committed");
      assert.equal(committed.item_id, started.item_id);
      const done = await c.next("response.done");
      assert.equal(done.response.status, "completed");
      // Let the VAD see more silence: it must not end (or commit) the turn a second time.
      appendAudio(c, silence(600));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(c.all("input_audio_buffer.committed").length, 1);
      assert.equal(c.all("input_audio_buffer.speech_stopped").length, 1);
    } finally {
      await c.close();
    }
  });
});
