/** Unit tests of the realtime door's parts: VAD, sentence splitting, G.711, resampling, handshake, client events. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from "../src/doors/ws/audio/g711.js";
import { InputDecoder, OutputEncoder } from "../src/doors/ws/audio/formats.js";
import { decodeBase64Strict } from "../src/doors/ws/audio/base64.js";
import { isProblem, parseClientEvent } from "../src/doors/ws/client-events.js";
import { parseHandshake } from "../src/doors/ws/handshake.js";
import { InputAudioBuffer } from "../src/doors/ws/input-buffer.js";
import { RationalResampler } from "../src/audio/rational-resample.js";
import { SentenceSplitter } from "../src/doors/ws/sentence-splitter.js";
import { EnergyVad, frameScore, type VadEvent } from "../src/doors/ws/vad.js";
import { silence, tone } from "./helpers/realtime.js";

const samples = (b: Buffer): Int16Array => new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
const settings = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };

function run(vad: EnergyVad, pcm: Buffer, pieceMs = 20): VadEvent[] {
  const out: VadEvent[] = [];
  const step = (24_000 * pieceMs) / 1000;
  const s = samples(pcm);
  for (let i = 0; i < s.length; i += step) out.push(...vad.push(s.subarray(i, i + step)));
  return out;
}

describe("energy VAD", () => {
  it("scores silence 0 and a loud tone near 1", () => {
    assert.equal(frameScore(samples(silence(10))), 0);
    assert.ok(frameScore(samples(tone(10, 440, 0.5))) > 0.8);
    assert.ok(frameScore(samples(tone(10, 440, 0.001))) < 0.3);
  });

  it("reports start (with prefix padding) and stop after the silence duration", () => {
    const vad = new EnergyVad(settings, 24_000);
    const events = run(vad, Buffer.concat([silence(1000), tone(800), silence(700)]));
    assert.deepEqual(events, [
      { type: "speech_started", audioStartMs: 700 },
      { type: "speech_stopped", audioEndMs: 2300 },
    ]);
  });

  it("ignores sounds shorter than the minimum speech length, and quiet noise", () => {
    const vad = new EnergyVad(settings, 24_000);
    assert.deepEqual(run(vad, Buffer.concat([silence(200), tone(20), silence(600), tone(500, 300, 0.001), silence(100)])), []);
  });

  it("keeps speech going across pauses shorter than the silence duration", () => {
    const vad = new EnergyVad(settings, 24_000);
    const events = run(vad, Buffer.concat([tone(300), silence(300), tone(300), silence(600)]));
    assert.deepEqual(events.map((e) => e.type), ["speech_started", "speech_stopped"]);
  });

  it("is independent of how the audio is cut into pieces", () => {
    const pcm = Buffer.concat([silence(500), tone(400), silence(600), tone(300), silence(600)]);
    assert.deepEqual(run(new EnergyVad(settings, 24_000), pcm, 7), run(new EnergyVad(settings, 24_000), pcm, 20));
  });

  it("a higher threshold needs louder audio", () => {
    const quiet = Buffer.concat([tone(300, 440, 0.03), silence(600)]);
    assert.equal(run(new EnergyVad({ ...settings, threshold: 0.3 }, 24_000), quiet).length, 2);
    assert.equal(run(new EnergyVad({ ...settings, threshold: 0.8 }, 24_000), quiet).length, 0);
  });
});

describe("the VAD's 24 → 16 kHz resampler", () => {
  const tone24k = (hz: number): Int16Array => Int16Array.from({ length: 24_000 }, (_, i) => Math.round(Math.sin((2 * Math.PI * hz * i) / 24_000) * 10_000));
  const rms = (x: Float32Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

  it("keeps speech frequencies, removes what 16 kHz cannot carry, and does not depend on how the input is cut", () => {
    const low = tone24k(1000);
    const whole = new RationalResampler(24_000, 16_000).push(low);
    assert.ok(Math.abs(whole.length - 16_000) <= 1, `${whole.length} samples`);
    const expected = 10_000 / 32768 / Math.SQRT2;
    assert.ok(Math.abs(rms(whole.subarray(100)) - expected) / expected < 0.03, `1 kHz rms ${rms(whole)}`);
    const r = new RationalResampler(24_000, 16_000);
    const pieces: number[] = [];
    for (let i = 0; i < low.length; i += 479) pieces.push(...r.push(low.subarray(i, i + 479)));
    assert.equal(pieces.length, whole.length);
    assert.ok(pieces.every((v, i) => Math.abs(v - whole[i]!) < 1e-6));
    const high = new RationalResampler(24_000, 16_000).push(tone24k(10_000));
    assert.ok(rms(high.subarray(100)) < expected * 0.01, `10 kHz rms ${rms(high)}`);
  });
});

describe("input audio buffer", () => {
  it("maps session positions to samples when dropping and keeping", () => {
    const b = new InputAudioBuffer(24_000);
    b.append(silence(1000));
    b.keepLast(400);
    assert.equal(Math.round(b.durationMs), 400);
    b.append(silence(600));
    b.dropBefore(1200); // session time: buffer spans 600..1600 ms
    assert.equal(Math.round(b.durationMs), 400);
    assert.equal(b.take().length, 9600 * 2);
    assert.equal(b.durationMs, 0);
  });

  it("keeps G.711 bytes as they came (8 kHz, one byte a sample), and the timeline across a change of format", () => {
    const b = new InputAudioBuffer(8000, 1);
    const ulaw = Buffer.from(Array.from({ length: 8000 }, (_, i) => i % 256));
    b.append(ulaw.subarray(0, 4000));
    b.append(ulaw.subarray(4000));
    assert.equal(b.durationMs, 1000);
    b.dropBefore(250);
    assert.deepEqual(b.peek(), ulaw.subarray(2000));
    assert.equal(b.positionMs, 1000);
    // To pcm16 24 kHz: three times the samples, two bytes each; the session position is unchanged.
    b.reformat(24_000, 2, (bytes) => Buffer.alloc(bytes.length * 6));
    assert.equal(b.positionMs, 1000);
    assert.equal(b.length, 6000 * 3);
    b.append(silence(500));
    assert.equal(b.positionMs, 1500);
  });
});

describe("input audio buffer: base64 decoded into its store", () => {
  const b64 = (bytes: Buffer) => bytes.toString("base64");
  const pcm = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

  it("stages exactly what decodeBase64Strict decodes, and refuses what it refuses, leaving the buffer as it was", () => {
    for (const good of ["AAEC", "QQ==", "QUI", "", "-_-_", b64(pcm(960, 1))]) {
      const b = new InputAudioBuffer(24_000, 1);
      const staged = b.stageBase64(good);
      assert.deepEqual(staged, decodeBase64Strict(good), JSON.stringify(good));
      b.append(staged!);
      assert.deepEqual(b.peek(), decodeBase64Strict(good));
    }
    const b = new InputAudioBuffer(24_000);
    b.append(b.stageBase64(b64(pcm(480, 2)))!);
    for (const bad of ["not base64!", "Q", "QU=D", "QU$D", "QUJD\n", "QQ=", "Q Q=", "====", "QU==QUJD", "QUJDRA="]) {
      assert.equal(b.stageBase64(bad), undefined, JSON.stringify(bad));
    }
    // A refused (or never appended) stage leaves nothing behind: the next append is what counts.
    b.stageBase64(b64(pcm(100, 9)));
    b.append(pcm(96, 3));
    assert.deepEqual(b.peek(), Buffer.concat([pcm(480, 2), pcm(96, 3)]));
    assert.equal(b.length, (480 + 96) / 2);
  });

  it("adds a staged view without copying, across growth of the store", () => {
    const b = new InputAudioBuffer(24_000);
    const all: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const chunk = pcm(960, i);
      all.push(chunk);
      const staged = b.stageBase64(b64(chunk))!;
      b.append(staged);
      // The staged bytes are the stored bytes: the view's memory is the store's.
      const view = b.peek();
      assert.equal(staged.buffer, view.buffer);
      assert.equal(staged.byteOffset, view.byteOffset + view.length - 960);
    }
    assert.deepEqual(b.take(), Buffer.concat(all));
  });

  it("never writes over audio it handed out: earlier peeks and takes stay as they were", () => {
    const b = new InputAudioBuffer(24_000);
    b.append(b.stageBase64(b64(pcm(4800, 1)))!);
    const peeked = b.peek();
    const peekedCopy = Buffer.from(peeked);
    b.dropBefore(50);
    const taken = b.take();
    const takenCopy = Buffer.from(taken);
    // Binary and base64 appends after a take and a clear, enough to grow the store twice over.
    for (let i = 0; i < 100; i++) {
      b.append(b.stageBase64(b64(pcm(960, 7 + i)))!);
      b.append(pcm(960, 100 + i));
      if (i % 10 === 0) b.clear();
    }
    assert.deepEqual(peeked, peekedCopy);
    assert.deepEqual(taken, takenCopy);
    assert.deepEqual(taken, pcm(4800, 1).subarray(2400));
  });
});

describe("sentence splitter", () => {
  it("cuts streamed text into sentences as soon as they end", () => {
    const s = new SentenceSplitter();
    assert.deepEqual(s.push("Hello"), []);
    assert.deepEqual(s.push(" world."), []);
    assert.deepEqual(s.push(" How are"), ["Hello world."]);
    assert.deepEqual(s.push(" you? Fine!\nOk"), ["How are you?", "Fine!"]);
    assert.deepEqual(s.flush(), ["Ok"]);
    assert.deepEqual(s.flush(), []);
  });

  it("cuts very long runs at white space", () => {
    const s = new SentenceSplitter(20);
    const out = s.push("one two three four five six seven eight");
    assert.ok(out.length >= 1);
    assert.ok(out.every((x) => x.length <= 20));
  });
});

describe("G.711 and the realtime audio formats", () => {
  it("µ-law and A-law round-trip within their quantization error", () => {
    const x = Int16Array.from([0, 100, -100, 1000, -1000, 12345, -12345, 32000, -32000]);
    const u = decodeUlaw(encodeUlaw(x));
    const a = decodeAlaw(encodeAlaw(x));
    for (let i = 0; i < x.length; i++) {
      const tol = Math.max(16, Math.abs(x[i]!) * 0.07);
      assert.ok(Math.abs(u[i]! - x[i]!) <= tol, `ulaw ${x[i]} → ${u[i]}`);
      assert.ok(Math.abs(a[i]! - x[i]!) <= tol, `alaw ${x[i]} → ${a[i]}`);
    }
  });

  it("decodes pcmu input to 24 kHz and encodes output back to 8 kHz", () => {
    const dec = new InputDecoder("audio/pcmu");
    assert.ok(Math.abs(dec.decode(new Uint8Array(80)).length - 240) <= 3);
    const enc = new OutputEncoder("audio/pcma");
    assert.ok(Math.abs(enc.encode(Buffer.alloc(480), 24_000).length - 80) <= 1);
  });

  it("refuses pcm16 with an odd number of bytes, and non-base64 text", () => {
    assert.throws(() => new InputDecoder("audio/pcm").decode(new Uint8Array(3)), /even/);
    assert.equal(decodeBase64Strict("not base64!"), undefined);
    assert.deepEqual(decodeBase64Strict("AAEC"), Buffer.from([0, 1, 2]));
  });
});

describe("handshake", () => {
  it("takes the key from the bearer header or the subprotocol, and echoes a safe subprotocol", () => {
    const h = parseHandshake({
      authorization: "",
      openAiBeta: "",
      protocols: "realtime, openai-insecure-api-key.sk-123, openai-beta.realtime-v1",
      query: "model=local%2Frealtime",
    });
    assert.deepEqual(h, { apiKey: "sk-123", beta: true, protocol: "realtime", model: "local/realtime", transcription: false });
    const b = parseHandshake({ authorization: "Bearer abc", openAiBeta: "realtime=v1", protocols: "", query: "intent=transcription" });
    assert.deepEqual(b, { apiKey: "abc", beta: true, protocol: "", model: "", transcription: true });
    const k = parseHandshake({ authorization: "", openAiBeta: "", protocols: "openai-insecure-api-key.sk-9", query: "" });
    assert.equal(k.protocol, "openai-insecure-api-key.sk-9");
    assert.equal(k.beta, false);
  });
});

describe("client events", () => {
  it("names the problem: bad JSON, unknown type, missing field, bad value", () => {
    const bad = parseClientEvent("{nope");
    assert.ok(isProblem(bad) && bad.code === "invalid_json");
    const unknown = parseClientEvent(JSON.stringify({ type: "session.fly", event_id: "e1" }));
    assert.ok(isProblem(unknown) && unknown.param === "type" && unknown.eventId === "e1");
    const missing = parseClientEvent(JSON.stringify({ type: "input_audio_buffer.append" }));
    assert.ok(isProblem(missing) && missing.param === "audio" && missing.code === "missing_required_parameter");
    const rate = parseClientEvent(JSON.stringify({ type: "session.update", session: { audio: { input: { format: { type: "audio/pcm", rate: 16000 } } } } }));
    assert.ok(isProblem(rate) && rate.param === "session.audio.input.format.rate", JSON.stringify(rate));
    const ok = parseClientEvent(JSON.stringify({ type: "response.create" }));
    assert.ok(!isProblem(ok));
  });
});
