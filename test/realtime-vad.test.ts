/**
 * Turn detection with the Silero VAD (the default) against the energy VAD,
 * on recorded-style audio made at test time: espeak-ng speech in pink
 * background noise, after a burst of white noise as loud as speech. The
 * energy VAD takes the burst for a turn; Silero does not, and its turn
 * boundaries are within 300 ms of the speech edges. Then the same through
 * the realtime door (default config, `realtime.vad.engine: energy`, and a
 * model that cannot load → the energy fallback), and what `prefix_padding_ms`
 * and `silence_duration_ms` mean for Silero.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Resampler } from "../src/audio/resample.js";
import { loadSileroModel, SILERO_FRAME, SILERO_FRAME_MS, type SileroModel } from "../src/audio/silero-model.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import { createTurnDetector, type TurnDetector, type VadEngine } from "../src/doors/ws/turn-detector.js";
import type { VadEvent, VadSettings } from "../src/doors/ws/vad.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { noisySpeech, type NoisySpeech } from "./helpers/noisy-speech.js";
import { appendAudio, RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

const SETTINGS: VadSettings = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };
const EDGE_TOLERANCE_MS = 300;

let audio: NoisySpeech;
let model: SileroModel;

before(async () => {
  audio = await noisySpeech({
    text: "Hello there. What is the weather like in Paris today?",
    burstAtMs: 1000,
    burstMs: 1200,
    burstAmplitude: 0.2,
    backgroundAmplitude: 0.02,
    speechAtMs: 3500,
    tailMs: 1500,
  });
  model = await loadSileroModel();
});

const samples = (b: Buffer): Int16Array => new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));

/** Feeds `pcm` in 20 ms pieces and resolves with the events once every frame was analysed. */
async function detect(detector: TurnDetector, events: VadEvent[], pcm: Buffer): Promise<VadEvent[]> {
  const s = samples(pcm);
  for (let i = 0; i < s.length; i += 480) detector.push(s.slice(i, i + 480));
  // The Silero detector analyses frames asynchronously: wait until its queue is empty.
  if (detector instanceof SileroVad) await detector.whenIdle();
  return events;
}

function run(engine: VadEngine, pcm: Buffer, settings = SETTINGS): Promise<VadEvent[]> {
  const events: VadEvent[] = [];
  const detector = createTurnDetector(engine, Promise.resolve(model), { settings, sampleRate: 24_000, startMs: 0, onEvent: (e) => events.push(e) });
  return detect(detector, events, pcm);
}

const starts = (ev: VadEvent[]): number[] => ev.flatMap((e) => (e.type === "speech_started" ? [e.audioStartMs] : []));
const stops = (ev: VadEvent[]): number[] => ev.flatMap((e) => (e.type === "speech_stopped" ? [e.audioEndMs] : []));

describe("Silero VAD vs the energy VAD on noisy speech", () => {
  it(`the energy VAD fires on the noise burst; Silero does not, and finds the speech within ${EDGE_TOLERANCE_MS} ms of its edges`, async (t) => {
    t.diagnostic(`audio mixed with ${audio.mixer}; speech ${audio.speechStartMs}–${audio.speechEndMs} ms, burst ${audio.burstStartMs}–${audio.burstEndMs} ms`);
    const energy = await run("energy", audio.pcm);
    const inBurst = starts(energy).filter((ms) => ms + SETTINGS.prefixPaddingMs >= audio.burstStartMs - 50 && ms < audio.burstEndMs);
    assert.equal(inBurst.length, 1, `energy VAD events: ${JSON.stringify(energy)}`);

    const silero = await run("silero", audio.pcm);
    assert.equal(starts(silero).length, 1, `Silero events: ${JSON.stringify(silero)}`);
    assert.equal(stops(silero).length, 1);
    // The detected speech span: audio_start_ms + prefix padding … audio_end_ms − silence duration.
    const start = starts(silero)[0]! + SETTINGS.prefixPaddingMs;
    const end = stops(silero)[0]! - SETTINGS.silenceDurationMs;
    t.diagnostic(`Silero speech ${start}–${end} ms`);
    assert.ok(Math.abs(start - audio.speechStartMs) <= EDGE_TOLERANCE_MS, `start ${start} vs ${audio.speechStartMs}`);
    assert.ok(Math.abs(end - audio.speechEndMs) <= EDGE_TOLERANCE_MS, `end ${end} vs ${audio.speechEndMs}`);
  });

  it("prefix_padding_ms moves audio_start_ms by exactly the padding; silence_duration_ms moves audio_end_ms by about the change", async () => {
    const base = await run("silero", audio.pcm);
    const padded = await run("silero", audio.pcm, { ...SETTINGS, prefixPaddingMs: 100 });
    assert.equal(starts(base)[0]! - starts(padded)[0]!, -200);
    const patient = await run("silero", audio.pcm, { ...SETTINGS, silenceDurationMs: 800 });
    const moved = stops(patient)[0]! - stops(base)[0]!;
    assert.ok(Math.abs(moved - 300) <= 2 * SILERO_FRAME_MS, `audio_end_ms moved ${moved} ms`);
  });

  it("a higher threshold needs more certain speech: at 0.9999 this speech never starts a turn, at 0.5 it does", async () => {
    assert.equal(starts(await run("silero", audio.pcm, { ...SETTINGS, threshold: 0.9999 })).length, 0);
    assert.equal(starts(await run("silero", audio.pcm)).length, 1);
  });

  it("reset() forgets audio not analysed yet: a reset right after the speech was pushed reports nothing", async () => {
    const events: VadEvent[] = [];
    const vad = new SileroVad(Promise.resolve(model), { settings: SETTINGS, sampleRate: 24_000, startMs: 0, onEvent: (e) => events.push(e) });
    const s = samples(audio.pcm);
    for (let i = 0; i < s.length; i += 480) vad.push(s.slice(i, i + 480));
    vad.reset();
    await detect(vad, events, Buffer.alloc(0));
    assert.deepEqual(events, []);
    // The timeline goes on after the reset: the same audio again is found at its later position.
    await detect(vad, events, audio.pcm);
    const at = starts(events)[0]!;
    const total = (audio.pcm.length / 2 / 24_000) * 1000;
    assert.ok(Math.abs(at + SETTINGS.prefixPaddingMs - (total + audio.speechStartMs)) <= EDGE_TOLERANCE_MS, `start ${at}`);
  });

  it("a model that cannot load: the detector runs the energy VAD on the same audio", async () => {
    const events: VadEvent[] = [];
    const d = createTurnDetector("silero", loadSileroModel("/nonexistent/silero.onnx"), { settings: SETTINGS, sampleRate: 24_000, startMs: 0, onEvent: (e) => events.push(e) });
    await detect(d, events, audio.pcm);
    assert.equal(d.engine, "energy");
    assert.deepEqual(events, await run("energy", audio.pcm));
  });

  it("frames of several streams at once run as one batch, each with its own state: the same probabilities as one by one", async () => {
    const frames = (seed: number): Float32Array[] =>
      Array.from({ length: 6 }, (_, f) => new Float32Array(SILERO_FRAME).map((_, i) => Math.sin((i + f * SILERO_FRAME) / (3 + seed)) * 0.05 * (seed + 1)));
    const inputs = [frames(0), frames(1), frames(2)];
    const alone = [];
    for (const fs of inputs) {
      const state = model.newState();
      const ps = [];
      for (const f of fs) ps.push(await model.probability(f, state));
      alone.push(ps);
    }
    // Three attached streams, each with a frame waiting: they run together.
    const detach = inputs.map(() => model.attach());
    const states = inputs.map(() => model.newState());
    const together: number[][] = [[], [], []];
    for (let f = 0; f < 6; f++) {
      const ps = await Promise.all(inputs.map((fs, k) => model.probability(fs[f]!, states[k]!)));
      ps.forEach((p, k) => together[k]!.push(p));
    }
    for (const d of detach) d();
    for (let k = 0; k < 3; k++) for (let f = 0; f < 6; f++) assert.ok(Math.abs(together[k]![f]! - alone[k]![f]!) < 1e-4, `stream ${k} frame ${f}: ${together[k]![f]} vs ${alone[k]![f]}`);
  });

  it("sessions at once (batched inference) find the same turns as one alone", async () => {
    const one = await run("silero", audio.pcm);
    const all = await Promise.all([run("silero", audio.pcm), run("silero", audio.pcm), run("silero", audio.pcm)]);
    for (const events of all) assert.deepEqual(events, one);
  });

  it("8 kHz audio (a phone line's, decoded G.711): Silero hears it upsampled to 16 kHz and finds the speech within 300 ms of its edges", async () => {
    const pcm8k = new Resampler(24_000, 8000).push(samples(audio.pcm));
    const events: VadEvent[] = [];
    const d = createTurnDetector("silero", Promise.resolve(model), { settings: SETTINGS, sampleRate: 8000, startMs: 0, onEvent: (e) => events.push(e) });
    for (let i = 0; i < pcm8k.length; i += 160) d.push(pcm8k.slice(i, i + 160));
    await (d as SileroVad).whenIdle();
    const [start] = starts(events);
    assert.equal(starts(events).length, 1, JSON.stringify(events));
    assert.ok(Math.abs(start! + SETTINGS.prefixPaddingMs - audio.speechStartMs) <= EDGE_TOLERANCE_MS, `start ${start}`);
    const [stop] = stops(events);
    assert.ok(Math.abs(stop! - SETTINGS.silenceDurationMs - audio.speechEndMs) <= EDGE_TOLERANCE_MS, `stop ${stop}`);
  });

  it("CPU per 32 ms frame (measured, reported as a diagnostic)", async (t) => {
    const state = model.newState();
    const frame = new Float32Array(SILERO_FRAME).map((_, i) => Math.sin(i / 7) * 0.1);
    for (let i = 0; i < 50; i++) await model.probability(frame, state);
    const n = 1000;
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) await model.probability(frame, state);
    const used = process.cpuUsage(before);
    const perFrame = (used.user + used.system) / 1000 / n;
    t.diagnostic(`Silero inference: ${perFrame.toFixed(3)} ms CPU per 32 ms frame`);
    const events: VadEvent[] = [];
    const d = createTurnDetector("silero", Promise.resolve(model), { settings: SETTINGS, sampleRate: 24_000, startMs: 0, onEvent: (e) => events.push(e) });
    const all = process.cpuUsage();
    await detect(d, events, audio.pcm);
    const whole = process.cpuUsage(all);
    const frames = (audio.pcm.length / 2 / 24_000) * 1000 / SILERO_FRAME_MS;
    t.diagnostic(`detector with resampling: ${((whole.user + whole.system) / 1000 / frames).toFixed(3)} ms CPU per 32 ms frame`);
    assert.ok(perFrame > 0);
  });
});

describe("turn detection through the realtime door", () => {
  let silero: TestGateway;
  let energy: TestGateway;
  let broken: TestGateway;
  before(async () => {
    silero = await startTestGateway();
    energy = await startTestGateway({ realtime: { vad: { engine: "energy" } } });
    broken = await startTestGateway({ realtime: { vad: { modelPath: "/nonexistent/model.onnx" } } });
  });
  after(async () => {
    await Promise.all([silero.close(), energy.close(), broken.close()]);
  });

  /** Streams the noisy audio into a session (no responses) and returns the speech events once the speech's turn ended. */
  async function turns(tg: TestGateway): Promise<{ started: number[]; stopped: number[] }> {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await c.next("session.created");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", create_response: false } } } } });
    await c.next("session.updated");
    appendAudio(c, audio.pcm);
    await c.next("input_audio_buffer.speech_stopped", (e) => e.audio_end_ms > audio.speechStartMs);
    await c.next("input_audio_buffer.committed", (e) => e.item_id === c.all("input_audio_buffer.speech_stopped").at(-1)!.item_id);
    const started = c.all("input_audio_buffer.speech_started").map((e) => e.audio_start_ms as number);
    const stopped = c.all("input_audio_buffer.speech_stopped").map((e) => e.audio_end_ms as number);
    assert.deepEqual(c.invalid, []);
    await c.close();
    return { started, stopped };
  }

  it("default (Silero): one turn, at the speech, with boundaries within 300 ms of its edges", async () => {
    const { started, stopped } = await turns(silero);
    assert.equal(started.length, 1, `speech_started at ${started.join(", ")}`);
    assert.ok(Math.abs(started[0]! + SETTINGS.prefixPaddingMs - audio.speechStartMs) <= EDGE_TOLERANCE_MS, `start ${started[0]}`);
    assert.ok(Math.abs(stopped[0]! - SETTINGS.silenceDurationMs - audio.speechEndMs) <= EDGE_TOLERANCE_MS, `end ${stopped[0]}`);
  });

  it("realtime.vad.engine: energy: the noise burst is a turn too", async () => {
    const { started } = await turns(energy);
    assert.equal(started.length, 2, `speech_started at ${started.join(", ")}`);
    assert.ok(started[0]! < audio.burstEndMs);
  });

  it("a model file that cannot load: sessions fall back to the energy VAD (the burst is a turn)", async () => {
    const { started } = await turns(broken);
    assert.equal(started.length, 2, `speech_started at ${started.join(", ")}`);
  });
});
