/**
 * POST /v1/audio/speech with the local espeak-ng engine, end to end over
 * loopback: the openai SDK and fetch as clients, produced audio decoded with
 * independent decoders, SSE events validated against OpenAI's schemas,
 * progressive streaming, client disconnects and bad input.
 */
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { WavStreamParser } from "../src/audio/wav.js";
import { TTS_SEGMENT_CHANNEL, type TtsSegmentEvent } from "../src/providers/local/tts-espeak.js";
import { ffprobe, hasFfmpeg, mp3Info, pathWith, withPath } from "./helpers/audio.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { childProcesses, waitFor } from "./helpers/processes.js";
import { parseSse, postJson } from "./helpers/sse.js";

const SENTENCE = "The quick brown fox jumps over the lazy dog. It was a sunny day.";

/** A few paragraphs, some thirty sentences. */
const LONG = Array.from(
  { length: 12 },
  (_, p) =>
    `Paragraph ${p + 1} begins here. The gateway streams speech while it is still being made. ` +
    "Each sentence is synthesized on its own, one after the other. Listeners hear the start long before the end is ready. " +
    "That is the whole point of streaming audio.",
).join("\n\n");

/** Seconds of s16le mono PCM at 24 kHz. */
const pcmSeconds = (bytes: number): number => bytes / 2 / 24000;

describe("POST /v1/audio/speech with local/tts", () => {
  let gw: TestGateway;
  let client: OpenAI;
  let url: string;
  /** Duration of SENTENCE as produced by the engine (from raw PCM), the reference for other formats. */
  let reference: number;
  before(async () => {
    gw = await startTestGateway({ grpc: { enabled: false } });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    url = `${gw.baseUrl}/audio/speech`;
    const res = await postJson(url, { model: "local/tts", input: SENTENCE, voice: "alloy", response_format: "pcm" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "audio/pcm");
    const pcm = Buffer.from(await res.arrayBuffer());
    assert.equal(pcm.length % 2, 0);
    reference = pcmSeconds(pcm.length);
    assert.ok(reference > 2 && reference < 10, `a two-sentence input lasts a few seconds (${reference})`);
  });
  after(() => gw.close());

  const near = (actual: number, expected: number, what: string): void =>
    assert.ok(Math.abs(actual - expected) <= expected * 0.1, `${what}: ${actual.toFixed(3)} s, expected ${expected.toFixed(3)} s ±10%`);

  it("answers the openai SDK's audio.speech.create with a valid 24 kHz MP3 (the default format)", async () => {
    const res = await client.audio.speech.create({ model: "local/tts", input: SENTENCE, voice: "alloy" });
    assert.equal(res.headers.get("content-type"), "audio/mpeg");
    assert.equal(res.headers.get("x-spillway-provider"), "local");
    const mp3 = new Uint8Array(await res.arrayBuffer());
    const info = await mp3Info(mp3);
    assert.equal(info.sampleRate, 24000);
    near(info.seconds, reference, "mp3 duration (mpg123)");
    if (hasFfmpeg) {
      const p = await ffprobe(mp3);
      assert.equal(p.codec, "mp3");
      near(p.seconds, reference, "mp3 duration (ffmpeg)");
    }
  });

  it("streams a WAV whose header announces an open length, decodable to the right rate and duration", async () => {
    const res = await client.audio.speech.create({ model: "local/tts", input: SENTENCE, voice: "nova", response_format: "wav" });
    assert.equal(res.headers.get("content-type"), "audio/wav");
    const wav = Buffer.from(await res.arrayBuffer());
    assert.equal(wav.readUInt32LE(40), 0xffffffff - 36, "data size unknown while streaming");
    const p = new WavStreamParser();
    const samples = p.push(wav);
    p.end();
    assert.equal(p.format?.sampleRate, 24000);
    assert.equal(p.format?.channels, 1);
    near(samples.length / 24000, reference, "wav duration");
    if (hasFfmpeg) {
      const f = await ffprobe(wav);
      assert.equal(f.sampleRate, 24000);
      near(f.seconds, reference, "wav duration (ffmpeg)");
    }
  });

  it("streams SSE speech.audio.delta events, then speech.audio.done with usage, then [DONE]", async () => {
    const res = await client.audio.speech.create({ model: "local/tts", input: SENTENCE, voice: "echo", stream_format: "sse" });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = parseSse(await res.text());
    assert.equal(events.at(-1)!.data, "[DONE]");
    const json = events.slice(0, -1).map((e) => JSON.parse(e.data));
    for (const j of json) assertSchema("CreateSpeechResponseStreamEvent", j);
    const deltas = json.filter((j) => j.type === "speech.audio.delta");
    assert.ok(deltas.length >= 2, `audio arrives in several events (${deltas.length})`);
    assert.equal(json.at(-1).type, "speech.audio.done");
    assert.equal(json.filter((j) => j.type === "speech.audio.done").length, 1);
    assert.ok(json.at(-1).usage.input_tokens > 0);
    const mp3 = Buffer.concat(deltas.map((d) => Buffer.from(d.audio, "base64")));
    near((await mp3Info(mp3)).seconds, reference, "mp3 duration from SSE deltas");
  });

  it("honours speed: twice as fast is about half as long", async () => {
    const res = await postJson(url, { model: "local/tts", input: SENTENCE, voice: "alloy", response_format: "pcm", speed: 2 });
    const seconds = pcmSeconds((await res.arrayBuffer()).byteLength);
    assert.ok(seconds < reference * 0.7 && seconds > reference * 0.3, `speed 2: ${seconds} s vs ${reference} s`);
  });

  it("sends the first audio of a long input before synthesis of its last sentence starts", async () => {
    const log: string[] = [];
    let count = 0;
    const onSegment = (m: unknown): void => {
      const e = m as TtsSegmentEvent;
      count = e.count;
      log.push(`segment ${e.index}`);
    };
    subscribe(TTS_SEGMENT_CHANNEL, onSegment);
    try {
      const res = await postJson(url, { model: "local/tts", input: LONG, voice: "alloy", response_format: "pcm" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-length"), null, "a chunked body, not a buffered one");
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.ok(first.value && first.value.length > 0);
      log.push("first bytes");
      let total = first.value.length;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        total += r.value.length;
      }
      assert.ok(count >= 20, `the input has many sentences (${count})`);
      assert.equal(log.filter((l) => l.startsWith("segment")).length, count, "every sentence was synthesized");
      assert.ok(
        log.indexOf("first bytes") < log.indexOf(`segment ${count - 1}`),
        `first audio before the last sentence was started: ${log.slice(0, 6).join(", ")} …`,
      );
      assert.ok(pcmSeconds(total) > 30, `the whole text was spoken (${pcmSeconds(total)} s)`);
    } finally {
      unsubscribe(TTS_SEGMENT_CHANNEL, onSegment);
    }
  });

  it("kills the espeak-ng process when the client disconnects mid-synthesis, leaving no zombie", async () => {
    const started: number[] = [];
    let count = 0;
    const onSegment = (m: unknown): void => {
      const e = m as TtsSegmentEvent;
      count = e.count;
      started.push(e.index);
    };
    subscribe(TTS_SEGMENT_CHANNEL, onSegment);
    try {
      const abort = new AbortController();
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "local/tts", input: LONG, voice: "alloy", response_format: "pcm" }),
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      // The client stops reading: backpressure holds synthesis; an espeak-ng child is running or about to.
      await waitFor(() => childProcesses().some((c) => c.name === "espeak-ng"), 5000, "an espeak-ng child");
      abort.abort();
      await waitFor(() => !childProcesses().some((c) => c.name === "espeak-ng"), 5000, "espeak-ng to be killed and reaped");
      assert.deepEqual(childProcesses().filter((c) => c.state === "Z"), [], "no zombie children");
      const before = started.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(started.length, before, "no sentence is started after the disconnect");
      assert.ok(started.length < count, `synthesis stopped early (${started.length} of ${count} sentences)`);
    } finally {
      unsubscribe(TTS_SEGMENT_CHANNEL, onSegment);
    }
  });

  it("encodes opus, aac and flac with ffmpeg", { skip: hasFfmpeg ? false : "ffmpeg is not installed" }, async () => {
    for (const [format, type, codec] of [
      ["opus", "audio/ogg; codecs=opus", "opus"],
      ["aac", "audio/aac", "aac"],
      ["flac", "audio/flac", "flac"],
    ] as const) {
      const res = await postJson(url, { model: "local/tts", input: SENTENCE, voice: "alloy", response_format: format });
      assert.equal(res.status, 200, format);
      assert.equal(res.headers.get("content-type"), type);
      const info = await ffprobe(new Uint8Array(await res.arrayBuffer()));
      assert.equal(info.codec, codec);
      near(info.seconds, reference, `${format} duration`);
    }
  });

  it("without ffmpeg, refuses opus with a 400 naming the formats available", async () => {
    const path = await pathWith(["espeak-ng"]);
    await withPath(path, async () => {
      const res = await postJson(url, { model: "local/tts", input: SENTENCE, voice: "alloy", response_format: "opus" });
      assert.equal(res.status, 400);
      const e = ((await res.json()) as any).error;
      assert.equal(e.param, "response_format");
      assert.match(e.message, /needs ffmpeg.*available formats: mp3, wav, pcm/);
      const ok = await postJson(url, { model: "local/tts", input: "Still fine.", voice: "alloy", response_format: "wav" });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
    });
  });

  it("lists local/tts as unavailable and answers 503 when espeak-ng is not installed", async () => {
    const path = await pathWith([]);
    await withPath(path, async () => {
      const models: any = await (await fetch(`${gw.baseUrl}/models`)).json();
      const tts = models.data.find((m: any) => m.id === "local/tts");
      assert.equal(tts.available, false);
      assert.equal(tts.unavailable_reason, "install espeak-ng");
      const res = await postJson(url, { model: "local/tts", input: SENTENCE, voice: "alloy" });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as any).error.message, /unavailable on this server: install espeak-ng/);
    });
    const models: any = await (await fetch(`${gw.baseUrl}/models`)).json();
    assert.equal(models.data.find((m: any) => m.id === "local/tts").available, true);
  });

  describe("bad input", () => {
    const expectError = async (res: Response, status: number, param: string | null, message: RegExp): Promise<void> => {
      const text = await res.text();
      assert.equal(res.status, status, text);
      const e = JSON.parse(text).error;
      assert.equal(e.param, param);
      assert.match(e.message, message);
    };

    it("empty input is a 400 naming 'input'", async () => {
      await expectError(await postJson(url, { model: "local/tts", input: "  ", voice: "alloy" }), 400, "input", /must not be empty/);
    });

    it("an unknown voice is a 400 listing the voices", async () => {
      await expectError(
        await postJson(url, { model: "local/tts", input: SENTENCE, voice: "bob" }),
        400,
        "voice",
        /Unknown voice 'bob'\. Available voices: alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse/,
      );
    });

    it("an unknown format, too fast a speed and a missing voice are 400s naming the field", async () => {
      await expectError(await postJson(url, { model: "local/tts", input: "x", voice: "alloy", response_format: "ogg" }), 400, "response_format", /Invalid/);
      await expectError(await postJson(url, { model: "local/tts", input: "x", voice: "alloy", speed: 5 }), 400, "speed", /Invalid/);
      await expectError(await postJson(url, { model: "local/tts", input: "x" }), 400, "voice", /Missing required parameter/);
    });

    it("malformed JSON is a 400, another content type a 415", async () => {
      await expectError(await postJson(url, '{"model": "local/tts",'), 400, null, /could not parse the JSON body/);
      const res = await fetch(url, { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" });
      await expectError(res, 415, null, /Unsupported Content-Type 'text\/plain'/);
    });

    it("a model that cannot speak is a 400, an unknown one a 404", async () => {
      await expectError(await postJson(url, { model: "local/echo", input: "x", voice: "alloy" }), 400, "model", /does not support speech synthesis/);
      await expectError(await postJson(url, { model: "local/nope", input: "x", voice: "alloy" }), 404, "model", /does not exist/);
    });
  });
});
