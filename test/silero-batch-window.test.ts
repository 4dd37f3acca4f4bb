/**
 * Silero's batching window by urgency (issue 17, wave 8): a frame whose
 * result cannot start or end a turn is asked for as `"relaxed"` and may wait
 * for other streams' frames up to `relaxedWindowMs` (one frame, 32 ms),
 * instead of the 8 ms a frame that may start or end a turn waits; a frame of
 * that kind that comes while a batch runs runs right after it. Proven
 * without wall-clock assertions: the model's timers are node:test's mocked
 * `setTimeout` (virtual time), and the detector's requests are recorded by a
 * stand-in model with scripted probabilities.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { SILERO_FRAME, type SileroState } from "../src/audio/silero-model.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import type { VadEvent } from "../src/doors/ws/vad.js";
import { scriptedSilero, sileroOrSkip } from "./helpers/silero.js";

const frame = (k: number): Float32Array => new Float32Array(SILERO_FRAME).map((_, i) => 0.2 * Math.sin(i / (5 + k)) + 0.01 * Math.sin(i * 7.3 + k));

/** Lets settled promises and onnxruntime's `setImmediate` run (real time; the timers stay mocked). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

describe("Silero batch window by urgency", () => {
  afterEach(() => mock.timers.reset());

  it("a relaxed frame waits past the 8 ms window and runs with a later stream's frame; a frame that may end a turn runs at 8 ms", async (t) => {
    const model = await sileroOrSkip(t);
    if (!model) return;
    // Three streams attached: a batch never runs because "every stream has a frame waiting".
    const detach = [model.attach(), model.attach(), model.attach()];
    const states: SileroState[] = [model.newState(), model.newState(), model.newState()];
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const b0 = model.stats.batches;
      const f0 = model.stats.frames;
      let settledA = false;
      const a = model.probability(frame(1), states[0]!, "relaxed").then((p) => ((settledA = true), p));
      mock.timers.tick(9);
      await settle();
      assert.equal(settledA, false, "a relaxed frame ran at the short window");
      assert.equal(model.stats.batches, b0);
      const b = model.probability(frame(2), states[1]!, "relaxed");
      mock.timers.tick(24);
      await settle();
      const [pa, pb] = await Promise.all([a, b]);
      assert.equal(model.stats.batches, b0 + 1, "the two relaxed frames share one run");
      assert.equal(model.stats.frames, f0 + 2);
      assert.ok(pa >= 0 && pa <= 1 && pb >= 0 && pb <= 1);

      // "now" (the default): runs at the short window, taking any relaxed frame waiting with it.
      let settledC = false;
      const c = model.probability(frame(3), states[2]!, "relaxed");
      const d = model.probability(frame(4), states[0]!).then((p) => ((settledD = true), p));
      let settledD = false;
      mock.timers.tick(7);
      await settle();
      assert.equal(settledD, false, "ran before the short window");
      void c.then(() => (settledC = true));
      mock.timers.tick(2);
      await settle();
      await Promise.all([c, d]);
      assert.ok(settledC && settledD);
      assert.equal(model.stats.batches, b0 + 2, "the urgent frame's run took the relaxed one");
      assert.equal(model.stats.frames, f0 + 4);
    } finally {
      mock.timers.reset();
      for (const x of detach) x();
    }
  });

  it("a 'now' frame that comes while a batch runs runs right after it, without waiting for its window; a relaxed one waits", async (t) => {
    const model = await sileroOrSkip(t);
    if (!model) return;
    const detach = [model.attach(), model.attach(), model.attach()];
    const states: SileroState[] = [model.newState(), model.newState(), model.newState()];
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const b0 = model.stats.batches;
      const first = model.probability(frame(1), states[0]!);
      mock.timers.tick(8); // the batch starts (its inference waits for a setImmediate)
      let relaxedDone = false;
      const relaxed = model.probability(frame(2), states[1]!, "relaxed").then(() => (relaxedDone = true));
      await first;
      await settle();
      assert.equal(model.stats.batches, b0 + 1);
      assert.equal(relaxedDone, false, "a relaxed frame that came during a run waits for its deadline");
      // Now a "now" frame while a batch runs: start one by ticking to the relaxed frame's deadline.
      mock.timers.tick(32);
      let urgentDone = false;
      const urgent = model.probability(frame(3), states[2]!).then(() => (urgentDone = true));
      await relaxed;
      await settle();
      assert.equal(urgentDone, true, "the 'now' frame waited for its window (no timer was ticked)");
      await urgent;
      assert.equal(model.stats.batches, b0 + 3);
    } finally {
      mock.timers.reset();
      for (const x of detach) x();
    }
  });

  it("the detector asks for 'now' exactly for frames that can start or end a turn, and the turn is the same", async () => {
    // 0.9 voiced, 0 quiet; threshold 0.5, silence 96 ms = 3 frames of 32 ms.
    const script = [0, 0.9, 0.9, 0.9, 0.9, 0, 0, 0.9, 0, 0, 0, 0, 0.9, 0];
    const { model: stand, asked } = scriptedSilero(script, false);
    const events: VadEvent[] = [];
    const vad = new SileroVad(Promise.resolve(stand), {
      settings: { threshold: 0.5, prefixPaddingMs: 0, silenceDurationMs: 96 },
      sampleRate: 16_000,
      startMs: 0,
      onEvent: (e) => events.push(e),
    });
    // Sound (never digital silence, so every frame is asked for), one frame per push.
    for (let k = 0; k < script.length; k++) vad.push(new Int16Array(SILERO_FRAME).fill(1000));
    await vad.whenIdle();
    vad.close();
    assert.deepEqual(asked, [
      "relaxed", // out of speech, no voiced frame before: cannot start speech
      "relaxed", // the first voiced frame: cannot start speech yet
      "now", // the second: starts speech
      "relaxed", // in speech, no quiet yet
      "relaxed",
      "relaxed", // quiet 0 → 32
      "relaxed", // quiet 32 → 64
      "now", // quiet 64: a quiet frame here ends the turn (it is voiced: the quiet restarts)
      "relaxed", // quiet 0 → 32
      "relaxed", // 32 → 64
      "now", // 64 → 96: ends the turn
      "relaxed", // out of speech again
      "relaxed", // voiced, first
      "now", // after a voiced frame: could start speech (it is quiet)
    ]);
    assert.deepEqual(events, [
      { type: "speech_started", audioStartMs: 32 },
      { type: "speech_stopped", audioEndMs: 352 },
    ]);
  });
});
