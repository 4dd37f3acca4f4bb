/**
 * Deepgram frames that follow the realtime session's VAD
 * (src/providers/deepgram/live-connection.ts, src/audio/speech-activity.ts):
 * while the VAD hears speech the audio goes up in frames of about
 * `speechChunkMs` (fewer socket writes than `chunkMs` ones); at its first
 * quiet frame what is held goes up at once, so the fake Deepgram has the
 * speech's last samples in a frame that ends where the speech ends — they
 * are not held for a frame to fill — and the bytes it got, joined, are the
 * client's audio from the turn's start, none lost or reordered. Also the
 * detectors' voice reports (Silero and energy): the first quiet frame is
 * reported before `speech_stopped`, and a listener that throws does not
 * stop the others.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SpeechActivity } from "../src/audio/speech-activity.js";
import { loadSileroModel } from "../src/audio/silero-model.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import { createTurnDetector } from "../src/doors/ws/turn-detector.js";
import type { VadEvent } from "../src/doors/ws/vad.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram, type LiveSession } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { noisySpeech } from "./helpers/noisy-speech.js";
import { appendAudio, RealtimeTestClient, realtimeUrl, silence, tone } from "./helpers/realtime.js";

/** pcm16 at 24 kHz: bytes per ms. */
const BPMS = 48;
const CHUNK_MS = 100;
const SPEECH_CHUNK_MS = 250;

let deepgram: FakeDeepgram;
let tg: TestGateway;

before(async () => {
  deepgram = await startFakeDeepgram();
  tg = await startTestGateway({
    grpc: { enabled: false },
    providers: {
      deepgram: { type: "deepgram", baseUrl: deepgram.baseUrl, apiKey: DEEPGRAM_KEY, chunkMs: CHUNK_MS, speechChunkMs: SPEECH_CHUNK_MS },
      fake: { type: "local" },
    },
    realtime: {
      // Tones stand in for speech: the energy VAD hears them, 10 ms frame by frame, exactly at their edges.
      vad: { engine: "energy" },
      profiles: { "phone/stt": { stt: "deepgram/nova-3", text: "fake/echo", tts: "fake/tts" } },
    },
  });
});
after(async () => {
  await tg.close();
  await deepgram.close();
});

/** Byte offsets (from the session's first audio byte) where each message the fake got ends. */
function boundaries(s: LiveSession, from: number): number[] {
  const out: number[] = [];
  let at = 0;
  for (const b of s.audio) {
    at += b.length;
    if (at > from) out.push(at);
  }
  return out;
}

describe("Deepgram frames follow the VAD", () => {
  it("large frames while speech lasts, the speech's end sent at the first quiet frame, every byte in order", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin, "phone/stt"));
    await c.next("session.created");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", create_response: false, silence_duration_ms: 300, prefix_padding_ms: 300 } } } } });
    await c.next("session.updated");
    const opened = deepgram.nextSession();
    // Turn 1 opens the session's socket; turn 2 is sent on it, all at once (no timer flushes a frame: only sizes and the pause cut them).
    const turn1 = Buffer.concat([silence(200), tone(400), silence(500)]);
    appendAudio(c, turn1);
    const s = await opened;
    await c.next("conversation.item.input_audio_transcription.completed");
    const startOfTurn2 = s.audio.reduce((n, b) => n + b.length, 0);
    const turn2 = Buffer.concat([silence(400), tone(1000), silence(500)]);
    appendAudio(c, turn2);
    const started = await c.next("input_audio_buffer.speech_started", (e) => e["audio_start_ms"] > 1000);
    const stopped = await c.next("input_audio_buffer.speech_stopped", (e) => e["audio_end_ms"] > 2000);
    await c.next("conversation.item.input_audio_transcription.completed", () => c.all("conversation.item.input_audio_transcription.completed").length >= 2);
    c.close();

    // What the fake got for turn 2, joined, is the client's audio from the turn's start (its prefix padding) on: nothing lost or reordered.
    const got = Buffer.concat(s.audio).subarray(startOfTurn2);
    const turn2StartMs = started["audio_start_ms"] - turn1.length / BPMS;
    const expected = turn2.subarray(turn2StartMs * BPMS);
    assert.ok(got.length >= (stopped["audio_end_ms"] - started["audio_start_ms"]) * BPMS, `the fake got ${got.length} bytes`);
    assert.ok(got.equals(expected.subarray(0, got.length)), "the bytes Deepgram got are the client's, in order");

    // The speech (the tone) ends 1400 ms into turn 2: a frame ends exactly there (sent at the first quiet frame, not held to fill 250 ms).
    const speechEnd = (1400 - turn2StartMs) * BPMS;
    const ends = boundaries(s, startOfTurn2).map((b) => b - startOfTurn2);
    assert.ok(ends.includes(speechEnd), `a frame ends where the speech ends (${speechEnd}); frames end at ${ends.join(", ")}`);
    // While speech lasted, frames of at least 250 ms (the one the pause flushed excepted): fewer writes than 100 ms frames.
    const during = ends.filter((b) => b <= speechEnd);
    const sizes = during.map((b, i) => b - (i === 0 ? 0 : during[i - 1]!));
    for (const n of sizes.slice(0, -1)) assert.ok(n >= SPEECH_CHUNK_MS * BPMS, `a speech frame of ${n / BPMS} ms (sizes ${sizes.map((x) => x / BPMS).join(", ")} ms)`);
    assert.ok(during.length <= Math.ceil(speechEnd / (SPEECH_CHUNK_MS * BPMS)) + 1, `${during.length} frames for ${speechEnd / BPMS} ms of speech`);
    // After the pause, `chunkMs` frames again (so Deepgram's endpointing hears the silence as soon as before).
    const afterPause = ends.filter((b) => b > speechEnd);
    for (let i = 1; i < afterPause.length; i++) assert.ok(afterPause[i]! - afterPause[i - 1]! <= (CHUNK_MS + 20) * BPMS, "silence frames of about chunkMs");
  });
});

describe("voice reports of the turn detectors", () => {
  it("energy: voiced at the tone, quiet at its first silent frame, before speech_stopped", () => {
    const seen: string[] = [];
    const d = createTurnDetector("energy", undefined, {
      settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 200 },
      sampleRate: 24_000,
      startMs: 0,
      onEvent: (e: VadEvent) => seen.push(e.type),
      onVoice: (v) => seen.push(v ? "voiced" : "quiet"),
    });
    for (const piece of [silence(100), tone(300), silence(20), silence(400)]) d.push(new Int16Array(piece.buffer, piece.byteOffset, piece.length / 2));
    assert.deepEqual(
      seen.filter((x, i) => x !== seen[i - 1]),
      ["quiet", "voiced", "speech_started", "quiet", "speech_stopped"],
    );
  });

  it("Silero: the first quiet frame is reported before speech_stopped, and voiced before speech_started", async (t) => {
    const model = loadSileroModel();
    try {
      await model;
    } catch (e) {
      t.skip(`the Silero model cannot be loaded here: ${(e as Error).message}`);
      return;
    }
    const a = await noisySpeech({ text: "Hello there, how are you?", burstAtMs: 0, burstMs: 20, burstAmplitude: 0.01, backgroundAmplitude: 0.01, speechAtMs: 500, tailMs: 1200 });
    const seen: string[] = [];
    const vad = new SileroVad(model, {
      settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 },
      sampleRate: 24_000,
      startMs: 0,
      onEvent: (e: VadEvent) => seen.push(e.type),
      onVoice: (v) => seen.push(v ? "voiced" : "quiet"),
    });
    const pcm = new Int16Array(a.pcm.buffer.slice(a.pcm.byteOffset, a.pcm.byteOffset + a.pcm.length));
    for (let i = 0; i < pcm.length; i += 480) vad.push(pcm.subarray(i, i + 480));
    await vad.whenIdle();
    vad.close();
    const started = seen.indexOf("speech_started");
    const stopped = seen.indexOf("speech_stopped");
    assert.ok(started > 0 && stopped > started, `events: ${seen.join(" ")}`);
    assert.equal(seen[started - 1], "voiced");
    assert.equal(seen.slice(started, stopped).at(-1), "quiet", "quiet was reported before speech_stopped");
  });

  it("SpeechActivity tells listeners only changes, in order, and one that throws does not stop the next", () => {
    const a = new SpeechActivity();
    const heard: boolean[] = [];
    a.subscribe(() => {
      throw new Error("a provider's bug");
    });
    const stop = a.subscribe((v) => heard.push(v));
    a.set(false);
    a.set(true);
    a.set(true);
    a.set(false);
    stop();
    a.set(true);
    assert.deepEqual(heard, [true, false]);
    assert.equal(a.speaking, true);
  });
});
