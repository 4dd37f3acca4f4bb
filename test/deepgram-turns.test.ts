/**
 * The hook for Deepgram's endpointing in the realtime door: a turn's
 * transcription (`TurnTranscription`, as the session runs it) reports the
 * recognizer's speech events as they come — `SPEECH_STOPPED` from
 * `speech_final` while the audio is still flowing, before the input ends —
 * so a session can end the turn on it; the transcript still completes
 * when the input ends.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SpeechEvent_Type, type SpeechEvent } from "../src/gen/spillway/v1/chunk.js";
import { Outbox } from "../src/doors/ws/outbox.js";
import { TurnTranscription } from "../src/doors/ws/transcription.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { silence, tone } from "./helpers/realtime.js";

let fake: FakeDeepgram;
let gw: TestGateway;
before(async () => {
  fake = await startFakeDeepgram();
  gw = await startTestGateway({ grpc: { enabled: false }, providers: { deepgram: { type: "deepgram", baseUrl: fake.baseUrl, apiKey: DEEPGRAM_KEY } } });
});
after(async () => {
  await gw.close();
  await fake.close();
});


describe("TurnTranscription with deepgram", () => {
  it("reports SPEECH_STOPPED from Deepgram's endpointing before the input ends", async () => {
    const sent: string[] = [];
    const outbox = new Outbox({ send: (m) => (sent.push(m), 1), getBufferedAmount: () => 0, cork: (cb) => cb() }, false, 1 << 20);
    const events: SpeechEvent[] = [];
    let stopped!: () => void;
    const stoppedSeen = new Promise<void>((r) => (stopped = r));
    const t = new TurnTranscription({
      engine: gw.gateway.engine,
      outbox,
      model: "deepgram/nova-3",
      language: "",
      prompt: "",
      itemId: "item_1",
      signal: new AbortController().signal,
      principal: undefined,
      onSpeech: (e) => {
        events.push(e);
        if (e.type === SpeechEvent_Type.TYPE_SPEECH_STOPPED) stopped();
      },
    });
    t.push(Buffer.concat([silence(100), tone(600)]));
    // 20 ms of silence at a time, until Deepgram says the speaker stopped (300 ms endpointing) — the input is still open.
    for (let i = 0; i < 100 && events.every((e) => e.type !== SpeechEvent_Type.TYPE_SPEECH_STOPPED); i++) {
      t.push(silence(20));
      await new Promise((r) => setTimeout(r, 20));
    }
    await stoppedSeen;
    assert.deepEqual(events.map((e) => e.type), [SpeechEvent_Type.TYPE_SPEECH_STARTED, SpeechEvent_Type.TYPE_SPEECH_STOPPED]);
    assert.equal(events[1]!.audioMs, 700);
    assert.equal(fake.sessions.at(-1)!.control.includes('{"type":"Finalize"}'), false, "the input had not ended");
    t.end();
    t.release();
    assert.equal(await t.result, "Hello from Deepgram.");
    assert.ok(sent.some((m) => m.includes("conversation.item.input_audio_transcription.completed")));
  });
});
