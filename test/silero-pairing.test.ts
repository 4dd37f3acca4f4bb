/**
 * Silero frames held and run in pairs (issue 17, silero6): a frame in speech
 * whose result cannot end the turn (quiet so far + two frames under
 * `silence_duration_ms`) waits for the stream's next frame, and the two run
 * as two steps of one model wake-up (`SileroModel.pair`). Proven here
 * without wall-clock assertions:
 *
 * - the probabilities are those of unpaired processing, bit for bit one
 *   stream alone (on the default and the exact graph), and batched with
 *   other streams within the load-time tolerance (batches of other sizes
 *   differ in the last bits, unpaired as well), and the turn events are the
 *   same, on the noisy espeak-ng tracks;
 * - which frames are held, frame by frame over a scripted turn, and that a
 *   frame that could start speech or end the turn is never held: its result
 *   (and event) has come before the next frame is pushed;
 * - a held frame whose successor does not come runs alone after `HOLD_MS`
 *   (mocked timers), and `whenIdle` runs it at once.
 */
import assert from "node:assert/strict";
import { afterEach, before, describe, it, mock } from "node:test";
import { loadSileroModel, SILERO_FRAME, SILERO_SPECIALIZED_TOLERANCE, type FrameUrgency, type SileroModel, type SileroState } from "../src/audio/silero-model.js";
import { HOLD_MS, SileroVad } from "../src/doors/ws/silero-vad.js";
import type { VadEvent, VadSettings } from "../src/doors/ws/vad.js";
import { noisySpeech, type NoisySpeech } from "./helpers/noisy-speech.js";
import { scriptedSilero } from "./helpers/silero.js";

const SETTINGS: VadSettings = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };

/** Lets settled promises and onnxruntime's `setImmediate` run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

/** `model` as one detector sees it, recording every probability in frame order; without `pair` when `pairs` is false (unpaired processing). */
function recorder(model: SileroModel, pairs: boolean): { model: SileroModel; probs: number[]; pairCalls: () => number } {
  const probs: number[] = [];
  let pairCalls = 0;
  const m: SileroModel = {
    stats: model.stats,
    newState: () => model.newState(),
    attach: () => model.attach(),
    async probability(f, s, u) {
      const p = await model.probability(f, s, u);
      probs.push(p);
      return p;
    },
    ...(pairs
      ? {
          async pair(a: Float32Array, b: Float32Array, s: SileroState, u?: FrameUrgency) {
            pairCalls++;
            const r = await model.pair!(a, b, s, u);
            probs.push(...r);
            return r;
          },
        }
      : {}),
  };
  return { model: m, probs, pairCalls: () => pairCalls };
}

const pcmOf = (t: NoisySpeech): Int16Array => new Int16Array(t.pcm.buffer.slice(t.pcm.byteOffset, t.pcm.byteOffset + t.pcm.length));

/** Several tracks through one detector each, at once (their frames batched), in 20 ms pieces interleaved. */
async function detect(models: SileroModel[], pcms: Int16Array[]): Promise<VadEvent[][]> {
  const events: VadEvent[][] = pcms.map(() => []);
  const vads = pcms.map((_, k) => new SileroVad(Promise.resolve(models[k]!), { settings: SETTINGS, sampleRate: 24_000, startMs: 0, onEvent: (e) => events[k]!.push(e) }));
  const longest = Math.max(...pcms.map((p) => p.length));
  for (let i = 0; i < longest; i += 480) {
    pcms.forEach((p, k) => {
      if (i < p.length) vads[k]!.push(p.slice(i, i + 480));
    });
    // Every 100 ms of audio let inference run, so that frames are held and paired as they come (not all queued first).
    if ((i / 480) % 5 === 4) await settle();
  }
  await Promise.all(vads.map((v) => v.whenIdle()));
  for (const v of vads) v.close();
  return events;
}

describe("Silero frames held and run in pairs", () => {
  let tracks: NoisySpeech[] = [];
  let specialized: SileroModel | undefined;
  let exact: SileroModel | undefined;

  before(async () => {
    try {
      specialized = await loadSileroModel();
      exact = await loadSileroModel(undefined, { matMuls: false });
    } catch {
      return; // onnxruntime-node cannot load here: those tests skip
    }
    tracks = [
      await noisySpeech({ text: "Hello there. What is the weather like in Paris today?", burstAtMs: 1000, burstMs: 1200, burstAmplitude: 0.2, backgroundAmplitude: 0.02, speechAtMs: 3500, tailMs: 1500 }),
      await noisySpeech({ text: "Please book a table for two at eight, by the window.", burstAtMs: 300, burstMs: 600, burstAmplitude: 0.1, backgroundAmplitude: 0.08, speechAtMs: 1500, tailMs: 1200 }),
    ];
  });
  afterEach(() => mock.timers.reset());

  it("pair() gives two probability() calls' numbers bit for bit: one wake-up, two runs", async (t) => {
    if (!specialized) return t.skip("onnxruntime-node cannot load here");
    const m = specialized;
    const f = pcmOf(tracks[0]!);
    const a = new Float32Array(SILERO_FRAME).map((_, i) => f[60_000 + i]! / 32768);
    const b = new Float32Array(SILERO_FRAME).map((_, i) => f[61_000 + i]! / 32768);
    const s1 = m.newState();
    const p1 = [await m.probability(a, s1), await m.probability(b, s1)];
    const s2 = m.newState();
    const st0 = { ...m.stats };
    const p2 = await m.pair!(a, b, s2);
    assert.deepEqual(p2, p1);
    assert.deepEqual([s2.h, s2.c], [s1.h, s1.c], "the state after the pair is the state after both frames");
    assert.equal(m.stats.batches - st0.batches, 1, "one wake-up");
    assert.equal(m.stats.runs! - st0.runs!, 2, "two runs back to back");
    assert.equal(m.stats.frames - st0.frames, 2);
  });

  for (const name of ["the default graph", "the exact graph (matMuls: false)"] as const) {
    it(`${name}: held-then-paired frames get the probabilities and turn events of unpaired processing, alone and batched`, async (t) => {
      const m = name === "the default graph" ? specialized : exact;
      if (!m) return t.skip("onnxruntime-node cannot load here");
      const pcms = [pcmOf(tracks[0]!), pcmOf(tracks[1]!), pcmOf(tracks[0]!).slice(24_000 * 0.7)];
      for (let k = 0; k < pcms.length; k++) {
        const unpaired = recorder(m, false);
        const paired = recorder(m, true);
        const [e0] = await detect([unpaired.model], [pcms[k]!]);
        const [e1] = await detect([paired.model], [pcms[k]!]);
        assert.ok(e0!.some((e) => e.type === "speech_started") && e0!.some((e) => e.type === "speech_stopped"), JSON.stringify(e0));
        assert.ok(paired.pairCalls() > 10, `frames were paired (${paired.pairCalls()} pairs)`);
        t.diagnostic(`track ${k}: ${paired.probs.length} frames inferred, ${paired.pairCalls()} pairs`);
        assert.deepEqual(e1, e0, "the same turn events");
        assert.deepEqual(paired.probs, unpaired.probs, "alone: the same probabilities, bit for bit");
      }
      // Batched: the three streams at once, paired, against each alone and unpaired.
      const alone = pcms.map(() => recorder(m, false));
      const aloneEvents: VadEvent[][] = [];
      for (let k = 0; k < pcms.length; k++) aloneEvents.push((await detect([alone[k]!.model], [pcms[k]!]))[0]!);
      const together = pcms.map(() => recorder(m, true));
      const st0 = { ...m.stats };
      const events = await detect(
        together.map((r) => r.model),
        pcms,
      );
      const wakeUps = m.stats.batches - st0.batches;
      const runs = m.stats.runs! - st0.runs!;
      t.diagnostic(`batched: ${m.stats.frames - st0.frames} frames, ${runs} runs, ${wakeUps} wake-ups`);
      assert.ok(runs > wakeUps, "some wake-ups ran two steps");
      assert.deepEqual(events, aloneEvents, "the same turn events");
      // Unpaired batching for comparison: batches of another size already differ from alone in the last bits (MLAS, and onnxruntime's kernels by batch size).
      const unpairedTogether = pcms.map(() => recorder(m, false));
      assert.deepEqual(await detect(unpairedTogether.map((r) => r.model), pcms), aloneEvents);
      const maxDiff = (x: number[][]): number => Math.max(...x.map((b, k) => Math.max(...b.map((p, f) => Math.abs(p - alone[k]!.probs[f]!)))));
      for (let k = 0; k < pcms.length; k++) assert.equal(together[k]!.probs.length, alone[k]!.probs.length);
      const dPaired = maxDiff(together.map((r) => r.probs));
      const dUnpaired = maxDiff(unpairedTogether.map((r) => r.probs));
      t.diagnostic(`batched against alone, max |Δp|: paired ${dPaired.toExponential(2)}, unpaired ${dUnpaired.toExponential(2)}`);
      assert.ok(dPaired <= SILERO_SPECIALIZED_TOLERANCE, `paired, batched: max |Δp| ${dPaired}`);
    });
  }

  const scripted = scriptedSilero;

  // 0.9 voiced, 0 quiet; threshold 0.5, silence 160 ms = 5 frames of 32 ms.
  const script = [0, 0.9, 0.9, 0.9, 0.9, 0, 0, 0.9, 0, 0, 0, 0, 0, 0.9, 0, 0.9];
  const scriptSettings: VadSettings = { threshold: 0.5, prefixPaddingMs: 0, silenceDurationMs: 160 };

  interface Observed {
    asked: string[];
    events: VadEvent[];
    answeredAfterPush: number[];
    eventsAfterPush: number[];
    /** The voice reports heard by the time each frame was pushed. */
    voiceAfterPush: boolean[][];
  }

  /** The script through a detector, one frame per push, recording after each push what has been answered and reported. */
  async function run(pairs: boolean, voiceHeard?: boolean): Promise<Observed> {
    const s = scripted(script, pairs);
    const events: VadEvent[] = [];
    const voice: boolean[] = [];
    const vad = new SileroVad(Promise.resolve(s.model), {
      settings: scriptSettings,
      sampleRate: 16_000,
      startMs: 0,
      onEvent: (e) => events.push(e),
      ...(voiceHeard !== undefined ? { onVoice: (v: boolean) => voice.push(v), voiceHeard: () => voiceHeard } : {}),
    });
    const o: Observed = { asked: s.asked, events, answeredAfterPush: [], eventsAfterPush: [], voiceAfterPush: [] };
    for (let k = 0; k < script.length; k++) {
      // Sound (never digital silence, so every frame is asked for), one frame per push.
      vad.push(new Int16Array(SILERO_FRAME).fill(1000));
      await settle();
      o.answeredAfterPush.push(s.answered());
      o.eventsAfterPush.push(events.length);
      o.voiceAfterPush.push([...voice]);
    }
    await vad.whenIdle();
    vad.close();
    return o;
  }

  it("holds exactly the frames in speech with quiet + 2 frames under silence_duration_ms; a frame that can start or end a turn has its result before the next frame comes", async () => {
    const paired = await run(true);
    const unpaired = await run(false);
    assert.deepEqual(paired.asked, [
      "relaxed", // 0: out of speech, cannot start it
      "relaxed", // 1: the first voiced frame
      "now", // 2: starts speech: never held
      "held (relaxed)", // 3: in speech, quiet 0 + 64 < 160
      "pair (relaxed)", // 4
      "held (relaxed)", // 5: quiet 0 → 32
      "pair (relaxed)", // 6: → 64
      "held (relaxed)", // 7: quiet 64 + 64 < 160 (voiced: the quiet restarts)
      "pair (relaxed)", // 8: → 32
      "held (relaxed)", // 9: quiet 32 + 64 < 160; → 64
      "pair (relaxed)", // 10: → 96
      "relaxed", // 11: quiet 96 + 64 = 160: not held (the next frame could end the turn); → 128
      "now", // 12: quiet 128 + 32 = 160: ends the turn
      "relaxed", // 13: out of speech, voiced (first)
      "now", // 14: could start speech (it is quiet)
      "relaxed", // 15: out of speech, cannot start it
    ]);
    assert.deepEqual(unpaired.asked, ["relaxed", "relaxed", "now", "relaxed", "relaxed", "relaxed", "relaxed", "relaxed", "relaxed", "relaxed", "relaxed", "relaxed", "now", "relaxed", "now", "relaxed"]);
    assert.deepEqual(paired.events, unpaired.events);
    assert.deepEqual(paired.events, [
      { type: "speech_started", audioStartMs: 32 },
      { type: "speech_stopped", audioEndMs: 416 },
    ]);
    // In wall-clock order: after frame k is pushed, every frame up to k has been answered except a held one.
    const held = new Set([3, 5, 7, 9]);
    assert.deepEqual(
      paired.answeredAfterPush,
      script.map((_, k) => (held.has(k) ? k : k + 1)),
    );
    assert.deepEqual(
      unpaired.answeredAfterPush,
      script.map((_, k) => k + 1),
    );
    // The events came right after their frames were pushed (2: speech_started, 12: speech_stopped), paired as unpaired.
    assert.deepEqual(paired.eventsAfterPush, unpaired.eventsAfterPush);
    assert.equal(paired.eventsAfterPush[2], 1);
    assert.equal(paired.eventsAfterPush[12], 2);
  });

  it("while the voice reports are acted on (Deepgram's framing), no frame after a voiced one is held: the first quiet report comes before the next frame", async () => {
    const heard = await run(true, true);
    const unpaired = await run(false, true);
    assert.deepEqual(heard.asked, [
      "relaxed",
      "relaxed",
      "now", // 2: starts speech (voiced)
      "relaxed", // 3: after a voiced frame: could be the first quiet one
      "relaxed", // 4
      "relaxed", // 5: the first quiet frame, quiet → 32
      "held (relaxed)", // 6: after a quiet one, quiet 32 + 64 < 160; → 64
      "pair (relaxed)", // 7: voiced, quiet → 0
      "relaxed", // 8: after a voiced frame; quiet → 32
      "held (relaxed)", // 9: → 64
      "pair (relaxed)", // 10: → 96
      "relaxed", // 11: quiet 96 + 64 = 160: not held
      "now", // 12: ends the turn
      "relaxed",
      "now",
      "relaxed",
    ]);
    assert.deepEqual(heard.events, unpaired.events);
    assert.deepEqual(heard.eventsAfterPush, unpaired.eventsAfterPush);
    const held = new Set([6, 9]);
    assert.deepEqual(
      heard.answeredAfterPush,
      script.map((_, k) => (held.has(k) ? k : k + 1)),
    );
    // Every quiet report (the flushes of Deepgram's framing) came when it did unpaired; the held frames' voiced reports (7's) no earlier.
    const quietBy = (o: Observed): number[] => o.voiceAfterPush.map((v) => v.filter((x) => !x).length);
    assert.deepEqual(quietBy(heard), quietBy(unpaired));
    assert.deepEqual(heard.voiceAfterPush[script.length - 1], unpaired.voiceAfterPush[script.length - 1]);
    assert.deepEqual(heard.voiceAfterPush[5], [true, false], "frame 5's quiet report before frame 6 is pushed");
    // Unheard (no listener): the same frames held as without onVoice.
    const unheard = await run(true, false);
    assert.deepEqual(
      unheard.answeredAfterPush,
      script.map((_, k) => ([3, 5, 7, 9].includes(k) ? k : k + 1)),
    );
  });

  it("a held frame whose next frame does not come runs alone after HOLD_MS; whenIdle runs it at once", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    const s = scripted([0.9, 0.9, 0.9, 0.9]);
    const vad = new SileroVad(Promise.resolve(s.model), { settings: scriptSettings, sampleRate: 16_000, startMs: 0, onEvent: () => {} });
    for (let k = 0; k < 3; k++) vad.push(new Int16Array(SILERO_FRAME).fill(1000));
    await settle();
    // 0, 1 (starts speech), then 2 held with nothing after it.
    assert.deepEqual(s.asked, ["relaxed", "now"]);
    mock.timers.tick(HOLD_MS - 1);
    await settle();
    assert.equal(s.answered(), 2, "still held");
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(s.asked, ["relaxed", "now", "relaxed"], "ran alone");
    vad.push(new Int16Array(SILERO_FRAME).fill(1000));
    await settle();
    assert.equal(s.answered(), 3, "the next frame is held");
    await vad.whenIdle();
    assert.deepEqual(s.asked, ["relaxed", "now", "relaxed", "relaxed"], "whenIdle ran it alone, without a timer");
    vad.close();
  });
});
