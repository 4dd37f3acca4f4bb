/**
 * The elevenlabs provider against a fake ElevenLabs (test/helpers/fake-elevenlabs.ts):
 * `/v1/audio/speech` with the official openai SDK (PCM, mp3 passed through,
 * WAV made by the door; voice names mapped from config), gRPC `Synthesize`
 * (PCM with its rate, µ-law passed through for telephony), errors mapped
 * (401, 422 naming the field, a missing voice, 429 retried, 5xx), a stream
 * cut after its first byte, and a client that goes away aborting the
 * upstream request.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status as GrpcStatus } from "@grpc/grpc-js";
import OpenAI from "openai";
import { AudioEncoding } from "../src/gen/spillway/v1/chunk.js";
import { ELEVENLABS_KEY, FAKE_MP3, fakeAudio, startFakeElevenLabs, type FakeElevenLabs } from "./helpers/fake-elevenlabs.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { readAll, spillwayClient, synthesizeRequest } from "./helpers/grpc.js";

let fake: FakeElevenLabs;
let gw: TestGateway;
let client: OpenAI;
const VOICE_ID = "21m00Tcm4TlvDq8ikWAM";

before(async () => {
  fake = await startFakeElevenLabs();
  gw = await startTestGateway({
    routing: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    providers: {
      elevenlabs: { type: "elevenlabs", baseUrl: fake.baseUrl, apiKey: ELEVENLABS_KEY, voices: { alloy: VOICE_ID }, voiceSettings: { stability: 0.5 } },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await gw.close();
  await fake.close();
});

const text = "Hello there, this is a test.";

describe("elevenlabs: /v1/audio/speech (openai SDK)", () => {
  it("pcm: pcm_24000 from the streaming endpoint, the voice name mapped to its id, bytes as ElevenLabs made them", async () => {
    const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", response_format: "pcm" });
    assert.equal(res.headers.get("x-spillway-provider"), "elevenlabs");
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(bytes, fakeAudio("pcm_24000", text.length * 10));
    const up = fake.requests.at(-1)!;
    assert.equal(up.url.pathname, `/v1/text-to-speech/${VOICE_ID}/stream`);
    assert.equal(up.url.searchParams.get("output_format"), "pcm_24000");
    assert.equal(up.headers["xi-api-key"], ELEVENLABS_KEY);
    assert.deepEqual(up.body, { text, model_id: "eleven_flash_v2_5", voice_settings: { stability: 0.5 } });
    assert.ok(up.audio.length > 1, "streamed in pieces");
  });

  it("mp3: mp3_44100_128 passed through untouched; speed goes in voice_settings; an unmapped voice is used as an id", async () => {
    const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "pNInz6obpgDQGcFmaJgB", response_format: "mp3", speed: 1.1 });
    assert.equal(res.headers.get("content-type"), "audio/mpeg");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), FAKE_MP3);
    const up = fake.requests.at(-1)!;
    assert.equal(up.url.pathname, "/v1/text-to-speech/pNInz6obpgDQGcFmaJgB/stream");
    assert.equal(up.url.searchParams.get("output_format"), "mp3_44100_128");
    assert.deepEqual(up.body.voice_settings, { stability: 0.5, speed: 1.1 });
  });

  it("wav: asked as PCM, wrapped by the door", async () => {
    const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", response_format: "wav" });
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(bytes.subarray(0, 4).toString("ascii"), "RIFF");
    assert.deepEqual(bytes.subarray(44), fakeAudio("pcm_24000", text.length * 10));
    assert.equal(fake.requests.at(-1)!.url.searchParams.get("output_format"), "pcm_24000");
  });

  it("errors keep their meaning: 401, 422 naming the field, a missing voice as 400 naming voice, 5xx as 502", async () => {
    const bad = await startTestGateway({ grpc: { enabled: false }, providers: { elevenlabs: { type: "elevenlabs", baseUrl: fake.baseUrl, apiKey: "wrong" } } });
    try {
      const c = new OpenAI({ baseURL: bad.baseUrl, apiKey: "unused", maxRetries: 0 });
      await assert.rejects(c.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: VOICE_ID }), (e: any) => {
        assert.equal(e.status, 401);
        assert.match(e.message, /Invalid API key/);
        return true;
      });
    } finally {
      await bad.close();
    }
    await assert.rejects(client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "missing" }), (e: any) => {
      assert.equal(e.status, 400);
      assert.equal(e.error?.param, "voice");
      assert.match(e.message, /was not found/);
      return true;
    });
    fake.script = { status: 422, body: { detail: [{ loc: ["body", "voice_settings", "speed"], msg: "ensure this value is less than or equal to 1.2", type: "value_error" }] } };
    try {
      await assert.rejects(client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", speed: 3 }), (e: any) => {
        assert.equal(e.status, 422);
        assert.equal(e.error?.param, "speed");
        assert.match(e.message, /less than or equal to 1.2/);
        return true;
      });
      fake.script = { status: 503, body: { detail: { status: "system_busy", message: "busy" } } };
      await assert.rejects(client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy" }), (e: any) => {
        assert.equal(e.status, 502);
        return true;
      });
    } finally {
      fake.script = {};
    }
  });

  it("429 is retried (routing.maxAttempts) and then succeeds", async () => {
    fake.script = { status: 429, statusTimes: 1, body: { detail: { status: "too_many_concurrent_requests", message: "Too many concurrent requests" } } };
    const before = fake.requests.length;
    try {
      const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", response_format: "pcm" });
      assert.ok((await res.arrayBuffer()).byteLength > 0);
      assert.equal(fake.requests.length - before, 2);
    } finally {
      fake.script = {};
    }
  });

  it("a stream cut after its first bytes is not passed off as complete: the body fails", async () => {
    fake.script = { closeAfterPieces: 1 };
    try {
      const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", response_format: "pcm" });
      await assert.rejects(res.arrayBuffer());
    } finally {
      fake.script = {};
    }
  });

  it("a client that goes away aborts the upstream request", async () => {
    fake.script = { pieceDelayMs: 200, msPerChar: 100 };
    try {
      const aborted = fake.nextAbort();
      const ac = new AbortController();
      const res = await client.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: "alloy", response_format: "pcm" }, { signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read();
      ac.abort();
      const req = await aborted;
      assert.ok(req.abortedAt !== undefined);
    } finally {
      fake.script = {};
    }
  });
});

describe("elevenlabs: a slow first byte", () => {
  it("past the provider's timeoutMs is a 504, and the upstream request is aborted", async () => {
    const slow = await startTestGateway({
      grpc: { enabled: false },
      routing: { maxAttempts: 1 },
      providers: { elevenlabs: { type: "elevenlabs", baseUrl: fake.baseUrl, apiKey: ELEVENLABS_KEY, timeoutMs: 200 } },
    });
    fake.script = { firstByteMs: 1500 };
    try {
      const aborted = fake.nextAbort();
      const c = new OpenAI({ baseURL: slow.baseUrl, apiKey: "unused", maxRetries: 0 });
      await assert.rejects(c.audio.speech.create({ model: "elevenlabs/eleven_flash_v2_5", input: text, voice: VOICE_ID, response_format: "pcm" }), (e: any) => {
        assert.equal(e.status, 504);
        return true;
      });
      assert.ok((await aborted).abortedAt !== undefined);
    } finally {
      fake.script = {};
      await slow.close();
    }
  });
});

describe("elevenlabs: gRPC Synthesize", () => {
  it("PCM at a rate ElevenLabs makes (16 kHz), chunks carrying their rate", async () => {
    const c = spillwayClient(gw.grpcAddress!);
    try {
      const { chunks, error } = await readAll(c.synthesize(synthesizeRequest("elevenlabs/eleven_flash_v2_5", text, { voice: "alloy", sampleRate: 16000 })));
      assert.equal(error, undefined);
      const audio = chunks.flatMap((ch) => (ch.payload?.$case === "audio" ? [ch.payload.value] : []));
      assert.ok(audio.every((a) => a.sampleRate === 16000 && a.encoding === AudioEncoding.AUDIO_ENCODING_PCM_S16LE));
      assert.deepEqual(Buffer.concat(audio.map((a) => Buffer.from(a.data))), fakeAudio("pcm_16000", text.length * 10));
      assert.equal(fake.requests.at(-1)!.url.searchParams.get("output_format"), "pcm_16000");
      const usage = chunks.find((ch) => ch.payload?.$case === "usage");
      assert.ok(usage?.payload?.$case === "usage" && Math.abs(usage.payload.value.outputAudioSeconds - text.length / 100) < 0.01);
    } finally {
      c.close();
    }
  });

  it("telephony: PCMU asks for ulaw_8000 and passes the bytes through", async () => {
    const c = spillwayClient(gw.grpcAddress!);
    try {
      const { chunks } = await readAll(c.synthesize(synthesizeRequest("elevenlabs/eleven_flash_v2_5", text, { voice: "alloy", encoding: AudioEncoding.AUDIO_ENCODING_PCMU })));
      const audio = chunks.flatMap((ch) => (ch.payload?.$case === "audio" ? [ch.payload.value] : []));
      assert.ok(audio.length > 0 && audio.every((a) => a.encoding === AudioEncoding.AUDIO_ENCODING_PCMU && a.sampleRate === 8000));
      assert.deepEqual(Buffer.concat(audio.map((a) => Buffer.from(a.data))), fakeAudio("ulaw_8000", text.length * 10));
      assert.equal(fake.requests.at(-1)!.url.searchParams.get("output_format"), "ulaw_8000");
    } finally {
      c.close();
    }
  });

  it("a missing voice is INVALID_ARGUMENT before any chunk", async () => {
    const c = spillwayClient(gw.grpcAddress!);
    try {
      const { chunks, error } = await readAll(c.synthesize(synthesizeRequest("elevenlabs/eleven_flash_v2_5", text, { voice: "" })));
      assert.equal(chunks.length, 0);
      assert.equal(error?.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(error.details, /voice is required.*alloy/);
    } finally {
      c.close();
    }
  });
});
