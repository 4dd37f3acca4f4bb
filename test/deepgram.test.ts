/**
 * The deepgram provider against a fake Deepgram (test/helpers/fake-deepgram.ts):
 * `/v1/audio/transcriptions` through the REST API with the official openai
 * SDK (whole and streamed), gRPC `Transcribe` over the live WebSocket
 * (interim then final results with times, speech events, KeepAlive in a
 * pause, Finalize + CloseStream at the end, G.711 sent as is), refusals and
 * failures before and after the first chunk, and a client that goes away.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status as GrpcStatus } from "@grpc/grpc-js";
import OpenAI, { toFile } from "openai";
import { AudioEncoding, SpeechEvent_Type, TranscriptDelta_Kind, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { readAll, spillwayClient, transcribeConfig } from "./helpers/grpc.js";
import { encodeUlaw } from "../src/doors/ws/audio/g711.js";
import { LiveResults } from "../src/providers/deepgram/live-results.js";

const RATE = 16_000;

function tone(ms: number, rate = RATE): Buffer {
  const n = Math.round((rate * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 300 * i) / rate) * 9000), i * 2);
  return b;
}
const quiet = (ms: number, rate = RATE): Buffer => Buffer.alloc(Math.round((rate * ms) / 1000) * 2);

function wavFile(pcm: Buffer, rate = RATE): Buffer {
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write("WAVEfmt ", 8, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let fake: FakeDeepgram;
let gw: TestGateway;
let client: OpenAI;

before(async () => {
  fake = await startFakeDeepgram();
  gw = await startTestGateway({
    routing: { maxAttempts: 1 },
    providers: { deepgram: { type: "deepgram", baseUrl: fake.baseUrl, apiKey: DEEPGRAM_KEY, keepAliveMs: 100 } },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await gw.close();
  await fake.close();
});

/** Streams `pcm` to gRPC Transcribe in 20 ms messages (optionally pausing in the middle), returning every chunk. */
async function transcribeGrpc(pcm: Buffer, config = transcribeConfig("deepgram/nova-3", RATE), pauseAt?: { at: number; ms: number }) {
  const c = spillwayClient(gw.grpcAddress!);
  try {
    const call = c.transcribe();
    const result = readAll(call);
    call.write({ input: { $case: "config", value: config } });
    const step = config.encoding === AudioEncoding.AUDIO_ENCODING_PCMU ? 160 : (RATE / 50) * 2;
    for (let at = 0; at < pcm.length; at += step) {
      if (pauseAt && at >= pauseAt.at && at < pauseAt.at + step) await sleep(pauseAt.ms);
      call.write({ input: { $case: "audio", value: pcm.subarray(at, at + step) } });
    }
    call.end();
    return await result;
  } finally {
    c.close();
  }
}

const transcripts = (chunks: Chunk[], kind: TranscriptDelta_Kind) =>
  chunks.flatMap((c) => (c.payload?.$case === "transcript" && c.payload.value.kind === kind ? [c.payload.value] : []));

describe("deepgram: pre-recorded REST for /v1/audio/transcriptions (openai SDK)", () => {
  it("uploads the file with its media type and the Token key; utterances become the transcript and its segments", async () => {
    const file = wavFile(Buffer.concat([quiet(200), tone(800), quiet(500)]));
    const res = await client.audio.transcriptions.create({ model: "deepgram/nova-3", file: await toFile(file, "speech.wav", { type: "audio/wav" }), response_format: "verbose_json", language: "en" });
    assert.equal(res.text, "Hello from Deepgram.");
    assert.deepEqual(
      res.segments?.map((s) => s.text),
      ["Hello from", "Deepgram."],
    );
    assert.equal(res.duration, 1.5);
    const up = fake.rest.at(-1)!;
    assert.equal(up.url.pathname, "/v1/listen");
    assert.equal(up.url.searchParams.get("model"), "nova-3");
    assert.equal(up.url.searchParams.get("language"), "en");
    assert.equal(up.url.searchParams.get("utterances"), "true");
    assert.equal(up.url.searchParams.get("smart_format"), "true");
    assert.equal(up.headers.authorization, `Token ${DEEPGRAM_KEY}`);
    assert.equal(up.headers["content-type"], "audio/wav");
    assert.deepEqual(up.body, file);
  });

  it("stream=true: transcript.text.delta events, then done with the full text", async () => {
    const stream = await client.audio.transcriptions.create({ model: "deepgram/nova-3", file: await toFile(wavFile(tone(500)), "a.wav", { type: "audio/wav" }), stream: true });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(events.filter((j) => j.type === "transcript.text.delta").map((j) => j.delta), ["Hello from", " Deepgram."]);
    assert.equal(events.at(-1).type, "transcript.text.done");
    assert.equal(events.at(-1).text, "Hello from Deepgram.");
  });

  it("Deepgram's refusals keep their meaning: 401 for a bad upstream key, 400 naming the model", async () => {
    const bad = await startTestGateway({ grpc: { enabled: false }, providers: { deepgram: { type: "deepgram", baseUrl: fake.baseUrl, apiKey: "wrong" } } });
    try {
      const c = new OpenAI({ baseURL: bad.baseUrl, apiKey: "unused", maxRetries: 0 });
      await assert.rejects(c.audio.transcriptions.create({ model: "deepgram/nova-3", file: await toFile(wavFile(tone(100)), "a.wav") }), (e: any) => {
        assert.equal(e.status, 401);
        assert.match(e.message, /Invalid credentials/);
        return true;
      });
    } finally {
      await bad.close();
    }
    fake.script = { refuseStatus: 400, refuseBody: { err_code: "Bad Request", err_msg: "No such model/language/tier combination found.", request_id: "r" } };
    try {
      await assert.rejects(client.audio.transcriptions.create({ model: "deepgram/nova-9", file: await toFile(wavFile(tone(100)), "a.wav") }), (e: any) => {
        assert.equal(e.status, 400);
        assert.equal(e.error?.param, "model");
        assert.match(e.message, /No such model/);
        return true;
      });
    } finally {
      fake.script = {};
    }
  });

  it("lists deepgram models as transcription models, and the provider in /readyz", async () => {
    const models = ((await (await fetch(`${gw.baseUrl}/models`)).json()) as any).data as any[];
    assert.deepEqual(models.find((m) => m.id === "deepgram/nova-3")?.capabilities, ["transcription"]);
    const ready = (await (await fetch(`${gw.origin}/readyz`)).json()) as any;
    assert.equal(ready.providers.find((p: any) => p.name === "deepgram")?.state, "ok");
  });
});

describe("deepgram: live WebSocket for gRPC Transcribe", () => {
  it("interim results then a final with its times, speech events, and the query Deepgram reads", async () => {
    const session = fake.nextSession();
    const { chunks, error } = await transcribeGrpc(Buffer.concat([quiet(200), tone(600), quiet(400)]));
    assert.equal(error, undefined);
    const s = await session;
    const q = s.url.searchParams;
    assert.deepEqual(
      ["model", "encoding", "sample_rate", "channels", "interim_results", "endpointing", "utterance_end_ms", "smart_format", "punctuate"].map((k) => q.get(k)),
      ["nova-3", "linear16", "16000", "1", "true", "300", "1000", "true", "true"],
    );
    assert.equal(s.headers.authorization, `Token ${DEEPGRAM_KEY}`);
    const interim = transcripts(chunks, TranscriptDelta_Kind.KIND_INTERIM);
    assert.ok(interim.length >= 2, `interim results: ${interim.length}`);
    assert.deepEqual(interim.slice(0, 2).map((t) => t.text), ["Hello", "Hello from"]);
    const finals = transcripts(chunks, TranscriptDelta_Kind.KIND_FINAL);
    assert.deepEqual(finals.map((t) => t.text), ["Hello from Deepgram."]);
    assert.ok(Math.abs(finals[0]!.startSeconds - 0.2) < 0.02, `start ${finals[0]!.startSeconds}`);
    assert.ok(Math.abs(finals[0]!.endSeconds - 0.8) < 0.02, `end ${finals[0]!.endSeconds}`);
    const kinds = chunks.map((c) => c.payload?.$case);
    assert.ok(kinds.indexOf("transcript") < kinds.lastIndexOf("transcript"));
    const speech = chunks.flatMap((c) => (c.payload?.$case === "speech" ? [c.payload.value] : []));
    assert.deepEqual(speech.map((e) => e.type), [SpeechEvent_Type.TYPE_SPEECH_STARTED, SpeechEvent_Type.TYPE_SPEECH_STOPPED]);
    assert.equal(speech[0]!.audioMs, 200);
    // The first interim came before the final: results are paced by the audio.
    const firstInterim = chunks.findIndex((c) => c.payload?.$case === "transcript" && c.payload.value.kind === TranscriptDelta_Kind.KIND_INTERIM);
    const firstFinal = chunks.findIndex((c) => c.payload?.$case === "transcript" && c.payload.value.kind === TranscriptDelta_Kind.KIND_FINAL);
    assert.ok(firstInterim < firstFinal);
    assert.deepEqual(s.control.slice(-2), ['{"type":"Finalize"}', '{"type":"CloseStream"}']);
    assert.equal(Buffer.concat(s.audio).length, Buffer.concat([quiet(200), tone(600), quiet(400)]).length);
    const usage = chunks.find((c) => c.payload?.$case === "usage")!;
    assert.ok(usage.payload?.$case === "usage" && Math.abs(usage.payload.value.inputAudioSeconds - 1.2) < 0.02);
    assert.deepEqual(chunks.slice(-2).map((c) => c.payload?.$case), ["usage", "finish"]);
    assert.equal((await s.closed).code, 1000);
  });

  it("Finalize at the end of the input flushes a segment Deepgram had not ended", async () => {
    const session = fake.nextSession();
    const { chunks } = await transcribeGrpc(Buffer.concat([quiet(100), tone(400)]));
    assert.deepEqual(transcripts(chunks, TranscriptDelta_Kind.KIND_FINAL).map((t) => t.text), ["Hello from Deepgram."]);
    const s = await session;
    assert.equal(s.sent.filter((m) => m["from_finalize"] === true).length, 1);
  });

  it("sends KeepAlive while the caller pauses, and goes on afterwards", async () => {
    const session = fake.nextSession();
    const pcm = Buffer.concat([tone(200), quiet(200)]);
    const { chunks, error } = await transcribeGrpc(pcm, undefined, { at: 6400, ms: 450 });
    assert.equal(error, undefined);
    const s = await session;
    const keepAlives = s.control.filter((m) => m === '{"type":"KeepAlive"}').length;
    assert.ok(keepAlives >= 2, `KeepAlive messages: ${keepAlives}`);
    assert.equal(chunks.at(-1)?.payload?.$case, "finish");
  });

  it("G.711 µ-law goes to Deepgram as mulaw at 8 kHz, byte for byte (no resampling)", async () => {
    const session = fake.nextSession();
    const pcm8k = tone(500, 8000);
    const ulaw = Buffer.from(encodeUlaw(new Int16Array(new Uint8Array(pcm8k).buffer)));
    const { chunks } = await transcribeGrpc(ulaw, transcribeConfig("deepgram/nova-3", 8000, { encoding: AudioEncoding.AUDIO_ENCODING_PCMU }));
    const s = await session;
    assert.equal(s.url.searchParams.get("encoding"), "mulaw");
    assert.equal(s.url.searchParams.get("sample_rate"), "8000");
    assert.deepEqual(Buffer.concat(s.audio), ulaw);
    assert.deepEqual(transcripts(chunks, TranscriptDelta_Kind.KIND_FINAL).map((t) => t.text), ["Hello from Deepgram."]);
  });

  it("16-bit PCM without a sample rate is INVALID_ARGUMENT naming sample_rate", async () => {
    const { error } = await transcribeGrpc(tone(100), transcribeConfig("deepgram/nova-3", 0));
    assert.equal(error?.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(error.details, /sample_rate/);
  });

  it("a refused handshake is a status before any chunk", async () => {
    fake.script = { refuseStatus: 402, refuseBody: { err_code: "ASR_PAYMENT_REQUIRED", err_msg: "Project does not have enough credits.", request_id: "r" } };
    try {
      const { chunks, error } = await transcribeGrpc(tone(200));
      assert.equal(chunks.length, 0);
      assert.equal(error?.code, GrpcStatus.RESOURCE_EXHAUSTED);
      assert.match(error.details, /enough credits/);
    } finally {
      fake.script = {};
    }
  });

  it("a close mid-stream (after the first result) is an in-band error after the chunks already sent", async () => {
    fake.script = { closeAfterResults: 1 };
    try {
      const { chunks, error } = await transcribeGrpc(Buffer.concat([tone(600), quiet(400)]));
      assert.equal(error, undefined);
      assert.ok(chunks.some((c) => c.payload?.$case === "transcript"));
      const last = chunks.at(-1)!;
      assert.ok(last.payload?.$case === "error");
      assert.match(last.payload.value.message, /close 1011.*NET-0000/);
    } finally {
      fake.script = {};
    }
  });

  it("an error close before any result (undecodable audio) fails the call with Deepgram's reason", async () => {
    fake.script = { errorClose: { code: 1008, reason: "DATA-0000 The payload cannot be decoded as audio." } };
    try {
      const { chunks, error } = await transcribeGrpc(tone(200));
      assert.equal(chunks.length, 0);
      assert.equal(error?.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(error.details, /DATA-0000/);
    } finally {
      fake.script = {};
    }
  });

  it("an Error message fails the call with Deepgram's description, and a message that is not JSON is a malformed upstream", async () => {
    const cases = [
      { message: JSON.stringify({ type: "Error", description: "Failed to process audio.", message: "bad audio", variant: "DATA-0001" }), code: GrpcStatus.UNAVAILABLE, details: /Failed to process audio\./ },
      { message: "<html>proxy error</html>", code: GrpcStatus.DATA_LOSS, details: /upstream sent a message that is not JSON/ },
    ];
    for (const c of cases) {
      fake.script = { sendOnFirstAudio: c.message };
      try {
        const { chunks, error } = await transcribeGrpc(tone(400));
        assert.equal(chunks.length, 0, "nothing before the failure");
        assert.equal(error?.code, c.code, `the call fails for ${c.message}`);
        assert.match(error.details, c.details);
      } finally {
        fake.script = {};
      }
    }
  });

  it("a slow first message still arrives: audio sent counts as life for the first-chunk timeout", async () => {
    const slow = await startTestGateway({
      http: {},
      providers: { deepgram: { type: "deepgram", baseUrl: fake.baseUrl, apiKey: DEEPGRAM_KEY, timeoutMs: 300 } },
    });
    fake.script = { firstMessageDelayMs: 600 };
    try {
      const c = spillwayClient(slow.grpcAddress!);
      const call = c.transcribe();
      const result = readAll(call);
      call.write({ input: { $case: "config", value: transcribeConfig("deepgram/nova-3", RATE) } });
      const pcm = Buffer.concat([tone(400), quiet(400)]);
      for (let at = 0; at < pcm.length; at += 640) {
        call.write({ input: { $case: "audio", value: pcm.subarray(at, at + 640) } });
        await sleep(20);
      }
      call.end();
      const { chunks, error } = await result;
      c.close();
      assert.equal(error, undefined);
      assert.deepEqual(transcripts(chunks, TranscriptDelta_Kind.KIND_FINAL).map((t) => t.text), ["Hello from Deepgram."]);
    } finally {
      fake.script = {};
      await slow.close();
    }
  });

  it("a client that goes away closes the Deepgram socket", async () => {
    const session = fake.nextSession();
    const c = spillwayClient(gw.grpcAddress!);
    const call = c.transcribe();
    call.on("error", () => undefined);
    call.write({ input: { $case: "config", value: transcribeConfig("deepgram/nova-3", RATE) } });
    call.write({ input: { $case: "audio", value: tone(100) } });
    const s = await session;
    call.cancel();
    const closed = await s.closed;
    assert.equal(closed.byClient, true, JSON.stringify({ closed, control: s.control, sent: s.sent.length }));
    assert.equal(s.control.includes('{"type":"CloseStream"}'), false, "the stream was closed, not finished");
    c.close();
    await sleep(50);
    assert.equal(gw.gateway.engine.admission.openStreams, 0);
  });
});

describe("deepgram: live messages → chunks", () => {
  it("UtteranceEnd ends an utterance that speech_final did not, once; Metadata gives the duration", () => {
    const r = new LiveResults();
    const results = (text: string, isFinal: boolean, speechFinal: boolean, start: number, duration: number) => ({
      type: "Results",
      start,
      duration,
      is_final: isFinal,
      speech_final: speechFinal,
      channel: { alternatives: [{ transcript: text }] },
    });
    assert.deepEqual(r.map({ type: "SpeechStarted", channel: [0], timestamp: 0.5 }), [{ $case: "speech", value: { type: SpeechEvent_Type.TYPE_SPEECH_STARTED, audioMs: 500 } }]);
    assert.deepEqual(r.map(results("hello", false, false, 0.5, 0.4)), [{ $case: "transcript", value: { text: "hello", kind: TranscriptDelta_Kind.KIND_INTERIM, startSeconds: 0.5, endSeconds: 0.9 } }]);
    assert.deepEqual(
      r.map(results("Hello there.", true, false, 0.5, 1)).map((p) => p.$case === "transcript" && [p.value.kind, p.value.text]),
      [
        [TranscriptDelta_Kind.KIND_DELTA, "Hello there."],
        [TranscriptDelta_Kind.KIND_FINAL, "Hello there."],
      ],
    );
    assert.deepEqual(r.map({ type: "UtteranceEnd", channel: [0, 1], last_word_end: 1.42 }), [{ $case: "speech", value: { type: SpeechEvent_Type.TYPE_SPEECH_STOPPED, audioMs: 1420 } }]);
    assert.deepEqual(r.map({ type: "UtteranceEnd", channel: [0, 1], last_word_end: 1.42 }), []);
    const second = r.map(results("How are you?", true, true, 2, 1));
    assert.deepEqual(second.map((p) => p.$case === "transcript" ? p.value.text : p.$case), [" How are you?", "How are you?", "speech"]);
    assert.deepEqual(r.map({ type: "UtteranceEnd", last_word_end: 3 }), [], "speech_final already ended it");
    assert.deepEqual(r.map({ type: "Metadata", duration: 3.5 }), []);
    assert.equal(r.seconds, 3.5);
    assert.deepEqual(r.map({ type: "Results", is_final: true, channel: {} }), [], "a malformed result is nothing");
  });
});
