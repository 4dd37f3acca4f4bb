/**
 * Audio building blocks (src/audio and the local engines' parsers): WAV
 * parse/write, resampling, MP3 encode/decode, format sniffing, decoding to
 * PCM (with ffmpeg where installed), sentence splitting, pocketsphinx output.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AudioEncoding, TranscriptDelta_Kind } from "../src/gen/spillway/v1/chunk.js";
import { decodeToPcm } from "../src/audio/decode.js";
import { encodeAudio } from "../src/audio/encode.js";
import { Mp3StreamDecoder } from "../src/audio/mp3-decoder.js";
import { Mp3StreamEncoder } from "../src/audio/mp3-encoder.js";
import { toBytes } from "../src/audio/pcm.js";
import { Resampler } from "../src/audio/resample.js";
import { sniffAudio } from "../src/audio/sniff.js";
import { WavStreamParser, wavHeader } from "../src/audio/wav.js";
import { SpillwayError } from "../src/engine/errors.js";
import { TranscriptBuilder } from "../src/doors/http/shapes/openai-audio/json.js";
import { UtteranceParser } from "../src/providers/local/stt-output.js";
import { splitSegments } from "../src/providers/local/tts-segments.js";
import { espeakRate, espeakVoice } from "../src/providers/local/tts-voices.js";
import { ffmpegConvert, ffprobe, hasFfmpeg, mp3Info } from "./helpers/audio.js";

/** A sine tone as s16 samples. */
function tone(hz: number, rate: number, seconds: number, amp = 12000): Int16Array {
  const out = new Int16Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

/** Upward zero crossings, with hysteresis so that low-level noise (an encoder's padding) does not count. */
function zeroCrossings(s: Int16Array): number {
  let n = 0;
  let low = false;
  for (const v of s) {
    if (v < -2000) low = true;
    else if (v > 2000 && low) {
      n++;
      low = false;
    }
  }
  return n;
}

function wavFile(samples: Int16Array, rate: number, streamed = false): Buffer {
  const pcm = toBytes(samples);
  return Buffer.concat([wavHeader(rate, 1, streamed ? undefined : pcm.length), pcm]);
}

async function collect(it: AsyncIterable<Int16Array>): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const p of it) parts.push(p);
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function* pieces(buf: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

function rejectsWith400(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SpillwayError, `expected a SpillwayError, got ${String(e)}`);
    assert.equal(e.code, 3, "InvalidArgument");
    assert.match(e.message, pattern);
    return true;
  });
}

describe("WAV", () => {
  it("parses a file fed one byte at a time, and a streamed header of unknown length", () => {
    const samples = tone(440, 16000, 0.1);
    for (const streamed of [false, true]) {
      const file = wavFile(samples, 16000, streamed);
      const p = new WavStreamParser();
      const got: number[] = [];
      for (let i = 0; i < file.length; i++) got.push(...p.push(file.subarray(i, i + 1)));
      p.end();
      assert.equal(p.format?.sampleRate, 16000);
      assert.deepEqual(got, [...samples]);
    }
  });

  it("mixes stereo 24-bit down to mono s16", () => {
    const h = Buffer.alloc(44);
    h.write("RIFF", 0);
    h.writeUInt32LE(36 + 12, 4);
    h.write("WAVEfmt ", 8);
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20);
    h.writeUInt16LE(2, 22);
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(8000 * 6, 28);
    h.writeUInt16LE(6, 32);
    h.writeUInt16LE(24, 34);
    h.write("data", 36);
    h.writeUInt32LE(12, 40);
    const data = Buffer.alloc(12);
    data.writeIntLE(4_000_000, 0, 3);
    data.writeIntLE(4_000_000, 3, 3);
    data.writeIntLE(-4_000_000, 6, 3);
    data.writeIntLE(0, 9, 3);
    const p = new WavStreamParser();
    const s = p.push(Buffer.concat([h, data]));
    assert.equal(s.length, 2);
    assert.ok(Math.abs(s[0]! - Math.round((4_000_000 / 8388608) * 32767)) <= 1);
    assert.ok(Math.abs(s[1]! - Math.round((-2_000_000 / 8388608) * 32767)) <= 1);
  });

  it("rejects what is not a WAV file, or a WAV it cannot read, naming the problem", () => {
    assert.throws(() => new WavStreamParser().push(Buffer.from("RIFF\0\0\0\0AVIfLIST")), /RIFF\/WAVE/);
    const adpcm = wavFile(tone(100, 8000, 0.01), 8000);
    adpcm.writeUInt16LE(2, 20);
    assert.throws(() => new WavStreamParser().push(adpcm), /Unsupported WAV encoding \(format tag 2\)/);
    const p = new WavStreamParser();
    p.push(Buffer.from("RIFF"));
    assert.throws(() => p.end(), /ends before its audio data/);
  });
});

describe("Resampler", () => {
  for (const [from, to] of [
    [22050, 24000],
    [48000, 16000],
    [24000, 16000],
  ] as const) {
    it(`converts ${from} Hz to ${to} Hz in chunks, keeping length and pitch`, () => {
      const input = tone(440, from, 1);
      const r = new Resampler(from, to);
      const parts: Int16Array[] = [];
      for (let i = 0; i < input.length; i += 1000) parts.push(r.push(input.subarray(i, i + 1000)));
      const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      assert.ok(Math.abs(out.length - to) <= 2, `length ${out.length} for 1 s at ${to} Hz`);
      // Past the filter's start-up transient (it starts from silence), the pitch is kept.
      const crossings = zeroCrossings(out.subarray(100));
      assert.ok(Math.abs(crossings - 440 * ((to - 100) / to)) <= 2, `440 Hz kept (${crossings} crossings)`);
    });
  }

  it("removes what the new rate cannot carry when downsampling", () => {
    const high = tone(10000, 48000, 0.5); // above 16 kHz's Nyquist limit (8 kHz): would alias to 6 kHz
    const out = new Resampler(48000, 16000).push(high);
    const peak = out.slice(100).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(peak < 12000 * 0.05, `10 kHz tone attenuated (peak ${peak})`);
  });
});

describe("MP3", () => {
  it("encodes PCM as it arrives and decodes back to the same rate and duration", async () => {
    const enc = new Mp3StreamEncoder(24000);
    const input = tone(300, 24000, 2);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < input.length; i += 2400) parts.push(enc.encode(input.subarray(i, i + 2400)));
    parts.push(enc.flush());
    assert.ok(parts.filter((p) => p.length > 0).length > 5, "frames come out while encoding, not only at flush");
    const info = await mp3Info(Buffer.concat(parts));
    assert.equal(info.sampleRate, 24000);
    assert.ok(Math.abs(info.seconds - 2) < 0.2, `duration ${info.seconds}`);
  });

  it("reports a file with no MPEG frames as corrupt", async () => {
    const d = new Mp3StreamDecoder();
    await d.init();
    d.push(Buffer.from("not an mp3 at all ".repeat(100)));
    assert.throws(() => d.end(), /Corrupt MP3 file/);
  });
});

describe("sniffAudio", () => {
  it("recognizes common containers by their first bytes", () => {
    assert.equal(sniffAudio(wavHeader(8000)), "wav");
    assert.equal(sniffAudio(Buffer.from("ID3\x04\0\0\0\0\0\0", "latin1")), "mp3");
    assert.equal(sniffAudio(Buffer.from([0xff, 0xf3, 0x84, 0xc4])), "mp3");
    assert.equal(sniffAudio(Buffer.from([0xff, 0xf1, 0x50, 0x80])), "aac");
    assert.equal(sniffAudio(Buffer.from("\0\0\0\x20ftypM4A ", "latin1")), "mp4");
    assert.equal(sniffAudio(Buffer.from("OggS\0\x02", "latin1")), "ogg");
    assert.equal(sniffAudio(Buffer.from("fLaC\0\0", "latin1")), "flac");
    assert.equal(sniffAudio(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), "webm");
    assert.equal(sniffAudio(Buffer.from("hello world!")), "unknown");
  });
});

describe("decodeToPcm", () => {
  const opts = { encoding: AudioEncoding.AUDIO_ENCODING_UNSPECIFIED, inputRate: 0, targetRate: 16000, signal: new AbortController().signal };

  it("decodes WAV and MP3 streamed in small pieces to 16 kHz", async () => {
    const wav = wavFile(tone(440, 22050, 1), 22050, true);
    const a = await collect(decodeToPcm(pieces(wav, 333), opts));
    assert.ok(Math.abs(a.length - 16000) < 50, `wav: ${a.length} samples`);
    const enc = new Mp3StreamEncoder(24000);
    const mp3 = Buffer.concat([enc.encode(tone(440, 24000, 1)), enc.flush()]);
    const b = await collect(decodeToPcm(pieces(mp3, 500), opts));
    assert.ok(Math.abs(b.length - 16000) < 16000 * 0.1, `mp3: ${b.length} samples`);
    assert.ok(Math.abs(zeroCrossings(b) - 440) < 30, `mp3 pitch: ${zeroCrossings(b)} crossings`);
  });

  it("takes raw PCM with its rate", async () => {
    const pcm = toBytes(tone(440, 24000, 0.5));
    const out = await collect(decodeToPcm(pieces(pcm, 101), { ...opts, encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, inputRate: 24000 }));
    assert.ok(Math.abs(out.length - 8000) <= 2);
  });

  it("fails empty, corrupt and unknown audio with a 400 that names the problem", async () => {
    await rejectsWith400(collect(decodeToPcm(pieces(Buffer.alloc(0), 10), opts)), /empty/);
    await rejectsWith400(collect(decodeToPcm(pieces(Buffer.from("RIFF\0\0\0\0WAVEjunkjunkjunk"), 4), opts)), /Corrupt WAV file|WAV/);
    await rejectsWith400(collect(decodeToPcm(pieces(Buffer.from("definitely not audio ".repeat(50)), 64), opts)), /Unsupported or (corrupt|unrecognized)/);
  });

  it("decodes M4A through ffmpeg", { skip: hasFfmpeg ? false : "ffmpeg is not installed" }, async () => {
    const m4a = await ffmpegConvert(wavFile(tone(440, 16000, 1), 16000), "m4a");
    assert.equal(sniffAudio(m4a), "mp4");
    const out = await collect(decodeToPcm(pieces(m4a, 4096), opts));
    assert.ok(Math.abs(out.length - 16000) < 1600, `${out.length} samples`);
  });
});

describe("encodeAudio", () => {
  async function* chunks(): AsyncGenerator<{ data: Buffer; encoding: AudioEncoding; sampleRate: number; channels: number }> {
    const s = tone(440, 22050, 1);
    for (let i = 0; i < s.length; i += 2205) {
      yield { data: toBytes(s.slice(i, i + 2205)), encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: 22050, channels: 1 };
    }
  }
  const signal = new AbortController().signal;
  async function bytes(format: "wav" | "mp3" | "flac" | "opus" | "aac" | "pcm"): Promise<Buffer> {
    const out: Uint8Array[] = [];
    for await (const b of encodeAudio(chunks(), format, signal)) out.push(b);
    return Buffer.concat(out);
  }

  it("resamples to 24 kHz and writes pcm, wav and mp3", async () => {
    const pcm = await bytes("pcm");
    assert.ok(Math.abs(pcm.length / 2 - 24000) < 30);
    const wav = await bytes("wav");
    const p = new WavStreamParser();
    const s = p.push(wav);
    assert.equal(p.format?.sampleRate, 24000);
    assert.ok(Math.abs(s.length - 24000) < 30);
    const info = await mp3Info(await bytes("mp3"));
    assert.equal(info.sampleRate, 24000);
    assert.ok(Math.abs(info.seconds - 1) < 0.1);
  });

  it("writes flac, opus and aac through ffmpeg", { skip: hasFfmpeg ? false : "ffmpeg is not installed" }, async () => {
    for (const [format, codec] of [
      ["flac", "flac"],
      ["opus", "opus"],
      ["aac", "aac"],
    ] as const) {
      const info = await ffprobe(await bytes(format));
      assert.equal(info.codec, codec);
      assert.ok(Math.abs(info.seconds - 1) < 0.15, `${format}: ${info.seconds} s`);
    }
  });
});

describe("local speech engine helpers", () => {
  it("splits text into sentences, the first one alone, long ones cut", () => {
    const s = splitSegments("Hi. This is short. And this one is a somewhat longer sentence!\n\nNew paragraph? Yes.");
    assert.equal(s[0], "Hi.");
    assert.ok(s.length >= 3);
    assert.equal(s.join(" "), "Hi. This is short. And this one is a somewhat longer sentence! New paragraph? Yes.");
    const long = splitSegments(`${"word ".repeat(300)}end.`);
    assert.ok(long.length >= 4 && long.every((x) => x.length <= 400));
  });

  it("maps OpenAI voices and speeds to espeak-ng, and lists voices for an unknown one", () => {
    assert.equal(espeakVoice("alloy"), "en-us+f2");
    assert.equal(espeakVoice("Onyx"), "en-us+m7");
    assert.throws(() => espeakVoice("bob"), /Unknown voice 'bob'. Available voices: alloy, ash, ballad, coral, echo/);
    assert.equal(espeakRate(1), 175);
    assert.equal(espeakRate(0), 175);
    assert.equal(espeakRate(4), 450);
    assert.equal(espeakRate(0.25), 80);
  });

  it("parses pocketsphinx output in arbitrary pieces", () => {
    const out = "hello world\n<s> 0.000 0.100 0.99\nhello 0.110 0.400 0.5\n<sil> 0.41 0.5 0.9\nworld(2) 0.510 0.900 0.4\n</s> 0.910 1.000 1.0\nthe end\n<s> 1.5 1.6 1\nthe 1.610 1.700 1\nend 1.710 2.000 1\n</s> 2.01 2.2 1\n";
    const p = new UtteranceParser();
    const got = [];
    for (let i = 0; i < out.length; i += 7) got.push(...p.push(out.slice(i, i + 7)));
    got.push(...p.finish());
    assert.deepEqual(
      got.map((u) => [u.text, u.start, u.end]),
      [
        ["hello world", 0.11, 0.9],
        ["the end", 1.61, 2],
      ],
    );
    assert.deepEqual(got[0]!.words.map((w) => w.word), ["hello", "world"]);
  });

  it("builds transcripts from deltas with segment marks, or from segments alone", () => {
    const d = new TranscriptBuilder();
    const delta = (text: string): { text: string; kind: TranscriptDelta_Kind; startSeconds: number; endSeconds: number } => ({ text, kind: TranscriptDelta_Kind.KIND_DELTA, startSeconds: 0, endSeconds: 0 });
    assert.equal(d.push(delta("hello")), "hello");
    assert.equal(d.push(delta(" world")), " world");
    assert.equal(d.push({ text: "hello world", kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: 0, endSeconds: 1 }), "");
    assert.equal(d.text, "hello world");
    assert.equal(d.segments.length, 1);
    const f = new TranscriptBuilder();
    f.push({ text: "One.", kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: 0, endSeconds: 1 });
    f.push({ text: "Two.", kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: 1, endSeconds: 2 });
    f.push({ text: "Tw", kind: TranscriptDelta_Kind.KIND_INTERIM, startSeconds: 2, endSeconds: 3 });
    assert.equal(f.text, "One. Two.");
    assert.deepEqual(f.segments.map((s) => s.end), [1, 2]);
  });
});

describe("MP3 with a large ID3 tag", () => {
  it("decodes past a tag bigger than the no-frame limit (cover art)", async () => {
    const size = 400 * 1024;
    const tag = Buffer.alloc(10 + size);
    tag.write("ID3", 0, "latin1");
    tag[3] = 4;
    tag[6] = (size >> 21) & 0x7f;
    tag[7] = (size >> 14) & 0x7f;
    tag[8] = (size >> 7) & 0x7f;
    tag[9] = size & 0x7f;
    const enc = new Mp3StreamEncoder(24000);
    const s = new Int16Array(24000);
    for (let i = 0; i < s.length; i++) s[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 24000));
    const file = Buffer.concat([tag, enc.encode(s), enc.flush()]);
    const d = new Mp3StreamDecoder();
    await d.init();
    let samples = 0;
    for (let i = 0; i < file.length; i += 16384) samples += d.push(file.subarray(i, i + 16384)).samples.length;
    d.end();
    assert.ok(Math.abs(samples - 24000) < 2400, `${samples} samples`);
  });
});
