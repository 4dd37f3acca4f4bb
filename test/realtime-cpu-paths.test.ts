/**
 * The realtime door's cheap paths for its hottest work (issue 17's CPU per
 * turn), each checked against the slow path it stands for: an
 * `input_audio_buffer.append` read without JSON.parse gives what parsing
 * gives (and anything else still goes through the parser), base64 checked
 * without a regular expression refuses what the expression refused, the
 * 24 → 16 kHz converter's silence shortcut gives the filter's output, its
 * unrolled loop (`loop: "unrolled"`; the default is SIMD, test/fir23-simd.test.ts) gives the general loop's floats bit for bit (on noisy
 * espeak-ng speech), Silero skips the inference of digital silence but not
 * of sound, batched frames get the probability a batch of one gives, a
 * detector never changes a frame the model has not finished with, and `ws`
 * (the Deepgram and ElevenLabs sockets) masks client frames with the native
 * `bufferutil` (the last four: issue 17, wave 5).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { RationalResampler } from "../src/audio/rational-resample.js";
import { SILERO_FRAME, type SileroModel, type SileroState } from "../src/audio/silero-model.js";
import { decodeBase64Strict } from "../src/doors/ws/audio/base64.js";
import { isProblem, parseClientEvent } from "../src/doors/ws/client-events.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";
import type { VadEvent } from "../src/doors/ws/vad.js";
import { noisySpeech } from "./helpers/noisy-speech.js";
import { convertInPieces } from "./helpers/resample.js";
import { sileroOrSkip } from "./helpers/silero.js";

/** Noisy speech as the VAD tests make it (espeak-ng in pink noise after a white-noise burst), 24 kHz samples. */
async function speechSamples(): Promise<Int16Array> {
  const a = await noisySpeech({
    text: "Hello there. What is the weather like in Paris today?",
    burstAtMs: 500,
    burstMs: 600,
    burstAmplitude: 0.2,
    backgroundAmplitude: 0.02,
    speechAtMs: 1500,
    tailMs: 800,
  });
  return new Int16Array(a.pcm.buffer.slice(a.pcm.byteOffset, a.pcm.byteOffset + a.pcm.length));
}

describe("append fast path", () => {
  it("reads the audio of JSON.stringify({ type, audio }) as JSON.parse would", () => {
    const audio = Buffer.from([1, 2, 3, 250, 251, 252]).toString("base64");
    assert.deepEqual(parseClientEvent(JSON.stringify({ type: "input_audio_buffer.append", audio })), { type: "input_audio_buffer.append", audio });
  });

  it("leaves other shapes to the parser: escapes, an event id, other keys, bad JSON", () => {
    // An escaped slash is a slash once parsed.
    assert.deepEqual(parseClientEvent('{"type":"input_audio_buffer.append","audio":"ab\\/c"}'), { type: "input_audio_buffer.append", audio: "ab/c" });
    assert.deepEqual(parseClientEvent('{"type":"input_audio_buffer.append","audio":"AAEC","event_id":"e1"}'), { type: "input_audio_buffer.append", event_id: "e1", audio: "AAEC" });
    const twoKeys = parseClientEvent('{"type":"input_audio_buffer.append","audio":"AA","x":"y"}');
    assert.equal(isProblem(twoKeys) ? "problem" : twoKeys.type, "input_audio_buffer.append");
    assert.equal((twoKeys as { audio?: string }).audio, "AA", "the parser's audio, not the text up to the end");
    const broken = parseClientEvent('{"type":"input_audio_buffer.append","audio":"AA" "}');
    assert.ok(isProblem(broken) && broken.code === "invalid_json");
  });
});

describe("base64 without a regular expression", () => {
  it("decodes base64 and refuses what is not", () => {
    assert.deepEqual(decodeBase64Strict("AAEC"), Buffer.from([0, 1, 2]));
    assert.deepEqual(decodeBase64Strict("QQ=="), Buffer.from("A"));
    assert.deepEqual(decodeBase64Strict("QUI"), Buffer.from("AB"));
    assert.deepEqual(decodeBase64Strict(""), Buffer.alloc(0));
    for (const bad of ["not base64!", "Q", "QU=D", "QU$D", "QUJD\n", "QQ=", "Q Q=", "====", "QU==QUJD", "QUJDRA="]) {
      assert.equal(decodeBase64Strict(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe("24 → 16 kHz silence shortcut", () => {
  it("gives the filter's own output for audio with silence before, between and after sound", () => {
    const x = new Int16Array(480 * 20);
    for (let i = 960; i < 2400; i++) x[i] = Math.round(5000 * Math.sin(i / 7));
    for (let i = 5000; i < 5100; i++) x[i] = 300;
    const fast = new RationalResampler(24_000, 16_000);
    const out: number[] = [];
    for (let i = 0; i < x.length; i += 480) out.push(...fast.push(x.subarray(i, i + 480)));
    // The same audio in one piece (not all zeros) never takes the shortcut: the filter's output, sample by sample.
    const slow = new RationalResampler(24_000, 16_000);
    const all = slow.push(x).slice();
    assert.equal(out.length, all.length);
    for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i]! - all[i]!) < 1e-7, `sample ${i}: ${out[i]} vs ${all[i]}`);
    assert.ok(out.some((v) => v !== 0));
  });
});

describe("24 → 16 kHz unrolled loop", () => {
  it("gives the general loop's floats bit for bit on noisy speech, whatever the pieces", async () => {
    const x = await speechSamples();
    for (const sizes of [[480], [1], [333, 7, 960], [x.length]]) {
      const fast = convertInPieces(new RationalResampler(24_000, 16_000, { loop: "unrolled" }), x, sizes);
      const slow = convertInPieces(new RationalResampler(24_000, 16_000, { loop: "general" }), x, sizes);
      assert.equal(fast.length, slow.length);
      assert.equal(fast.length, Math.floor((x.length * 2) / 3) + (x.length % 3 === 0 ? 0 : 1));
      assert.ok(Buffer.from(fast.buffer).equals(Buffer.from(slow.buffer)), `pieces ${sizes.join(",")}: the bytes differ`);
      assert.ok(fast.some((v) => Math.abs(v) > 0.05), "the speech is there");
    }
  });

  it("the general loop is what it was: other ratios (48 → 16 kHz) still convert", () => {
    const tone = new Int16Array(4800);
    for (let i = 0; i < tone.length; i++) tone[i] = Math.round(10_000 * Math.sin((2 * Math.PI * 440 * i) / 48_000));
    const out = new RationalResampler(48_000, 16_000).push(tone);
    assert.equal(out.length, 1600);
    const peak = out.subarray(100).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(Math.abs(peak - 10_000 / 32768) < 0.02, `a 440 Hz tone keeps its level: ${peak}`);
  });
});

describe("Silero skips digital silence", () => {
  it("runs the model on the frames with sound only", async (t) => {
    const model = await sileroOrSkip(t);
    if (!model) return;
    const before = model.stats.frames;
    const vad = new SileroVad(Promise.resolve(model), {
      settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 },
      sampleRate: 24_000,
      startMs: 0,
      onEvent: () => undefined,
    });
    // 1 s of zeros, 1 s of sound, 1 s of zeros: 93 frames of 32 ms.
    const s = new Int16Array(24_000 * 3);
    for (let i = 24_000; i < 48_000; i++) s[i] = Math.round(8000 * Math.sin(i / 5) * Math.sin(i / 900));
    for (let i = 0; i < s.length; i += 480) vad.push(s.subarray(i, i + 480));
    await vad.whenIdle();
    const ran = model.stats.frames - before;
    assert.ok(ran >= 31 && ran <= 34, `the second of sound (31–32 frames and the filter's edges), not 93: ${ran}`);
    vad.close();
  });
});

describe("Silero batches", () => {
  it("gives each frame, batched with others or alone, the probability a batch of its own gives", async (t) => {
    const model = await sileroOrSkip(t);
    if (!model) return;
    const x = await speechSamples();
    const r = new RationalResampler(24_000, 16_000);
    const pcm = r.push(x).slice();
    const frames: Float32Array[] = [];
    for (let i = 0; i + SILERO_FRAME <= pcm.length && frames.length < 60; i += SILERO_FRAME) frames.push(pcm.slice(i, i + SILERO_FRAME));
    // Alone: one stream, one frame at a time (batches of one).
    const alone: number[] = [];
    const s1 = model.newState();
    for (const f of frames) alone.push(await model.probability(f, s1));
    // Batched: three streams on the same audio at once (batches of three), twice over.
    for (let round = 0; round < 2; round++) {
      const states = [model.newState(), model.newState(), model.newState()];
      const detach = states.map(() => model.attach());
      const got: number[][] = [[], [], []];
      for (const f of frames) {
        const ps = await Promise.all(states.map((st) => model.probability(f, st)));
        ps.forEach((p, i) => got[i]!.push(p));
      }
      for (const d of detach) d();
      for (const g of got) {
        assert.equal(g.length, alone.length);
        for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i]! - alone[i]!) < 1e-5, `round ${round} frame ${i}: ${g[i]} vs ${alone[i]}`);
      }
    }
    assert.ok(alone.some((p) => p > 0.5) && alone.some((p) => p < 0.2), "speech and non-speech frames");
  });

  it("a detector changes no frame before the model has settled it; pieces of 20 ms or 1 s give the same turn", async (t) => {
    const model = await sileroOrSkip(t);
    if (!model) return;
    const x = await speechSamples();
    let changed = 0;
    let calls = 0;
    // The model as the detector sees it, checking its contract: a frame does not change until its promise settles.
    const watched: SileroModel = {
      stats: model.stats,
      newState: () => model.newState(),
      attach: () => model.attach(),
      async probability(frame: Float32Array, state: SileroState) {
        calls++;
        const copy = frame.slice();
        const p = await model.probability(frame, state);
        if (!Buffer.from(copy.buffer).equals(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))) changed++;
        return p;
      },
    };
    const events = async (m: SileroModel, piece: number): Promise<VadEvent[]> => {
      const ev: VadEvent[] = [];
      const vad = new SileroVad(Promise.resolve(m), {
        settings: { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 },
        sampleRate: 24_000,
        startMs: 0,
        onEvent: (e) => ev.push(e),
      });
      for (let i = 0; i < x.length; i += piece) vad.push(x.slice(i, i + piece));
      await vad.whenIdle();
      vad.close();
      return ev;
    };
    // Pieces of 20 ms (frames one by one) and of 1 s (dozens queued while one runs).
    const small = await events(watched, 480);
    const large = await events(watched, 24_000);
    assert.ok(calls > 50, `frames analysed: ${calls}`);
    assert.equal(changed, 0, "frames changed while the model had them");
    assert.ok(small.some((e) => e.type === "speech_started") && small.some((e) => e.type === "speech_stopped"), JSON.stringify(small));
    assert.deepEqual(large, small, "the same turn whatever the pieces");
  });
});

describe("ws masks with bufferutil", () => {
  it("the upstream sockets' client frames are masked by the native addon, not in JavaScript", (t) => {
    if (process.platform !== "linux" || process.arch !== "x64") {
      t.skip("bufferutil ships a prebuilt binary for linux-x64 (and macOS, Windows); elsewhere it may be built or absent");
      return;
    }
    const require = createRequire(import.meta.url);
    const native = require("bufferutil") as { mask: (...a: unknown[]) => void };
    assert.match(native.mask.toString(), /\[native code\]/, "bufferutil loaded its binary");
    // ws picks bufferutil when it can load it; its JavaScript loop only for frames under 48 bytes.
    const wsUtil = createRequire(require.resolve("ws"))("./lib/buffer-util.js") as { mask: (...a: unknown[]) => void };
    assert.match(wsUtil.mask.toString(), /bufferUtil\.mask/);
    const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const out = Buffer.alloc(106);
    wsUtil.mask(data, Buffer.from([1, 2, 3, 4]), out, 6, 100);
    for (let i = 0; i < 100; i++) assert.equal(out[6 + i], data[i]! ^ [1, 2, 3, 4][i % 4]!);
  });
});
