/**
 * The realtime door's cheap paths for its hottest work (issue 17's CPU per
 * turn), each checked against the slow path it stands for: an
 * `input_audio_buffer.append` read without JSON.parse gives what parsing
 * gives (and anything else still goes through the parser), base64 checked
 * without a regular expression refuses what the expression refused, the
 * 24 → 16 kHz converter's silence shortcut gives the filter's output, and
 * Silero skips the inference of digital silence but not of sound.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RationalResampler } from "../src/audio/rational-resample.js";
import { loadSileroModel } from "../src/audio/silero-model.js";
import { decodeBase64Strict } from "../src/doors/ws/audio/base64.js";
import { isProblem, parseClientEvent } from "../src/doors/ws/client-events.js";
import { SileroVad } from "../src/doors/ws/silero-vad.js";

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

describe("Silero skips digital silence", () => {
  it("runs the model on the frames with sound only", async (t) => {
    let model;
    try {
      model = await loadSileroModel();
    } catch {
      t.skip("onnxruntime-node cannot load here");
      return;
    }
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
