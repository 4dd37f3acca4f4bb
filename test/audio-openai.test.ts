/**
 * Audio through the openai provider against a fake OpenAI upstream
 * (test/helpers/fake-openai-audio.ts): speech bytes passed through as they
 * arrive in both stream formats, and transcription streamed (gpt-4o
 * models) or whole (whisper-1), driven by the official openai SDK.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { Mp3StreamEncoder } from "../src/audio/mp3-encoder.js";
import { startFakeOpenAiAudio, type FakeAudioUpstream } from "./helpers/fake-openai-audio.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { parseSse, postJson } from "./helpers/sse.js";

function toneMp3(): Buffer {
  const s = new Int16Array(24000);
  for (let i = 0; i < s.length; i++) s[i] = Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / 24000));
  const enc = new Mp3StreamEncoder(24000);
  return Buffer.concat([enc.encode(s), enc.flush()]);
}

describe("audio via the openai provider (fake upstream)", () => {
  let fake: FakeAudioUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startFakeOpenAiAudio(toneMp3());
    gw = await startTestGateway({
      grpc: { enabled: false },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream", models: ["tts-1", "gpt-4o-mini-tts", "whisper-1", "gpt-4o-transcribe"] } },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  const last = (): FakeAudioUpstream["requests"][number] => fake.requests.at(-1)!;

  it("passes tts-1 speech bytes through unchanged (the upstream encodes; raw upstream body)", async () => {
    const res = await client.audio.speech.create({ model: "openai/tts-1", input: "Hello.", voice: "alloy", speed: 1.5 });
    assert.equal(res.headers.get("content-type"), "audio/mpeg");
    assert.equal(res.headers.get("x-spillway-provider"), "openai");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), fake.speechBytes);
    const up = last();
    assert.deepEqual(up.body, { model: "tts-1", input: "Hello.", voice: "alloy", response_format: "mp3", speed: 1.5 });
    assert.equal(up.headers.authorization, "Bearer sk-upstream");
  });

  it("streams gpt-4o-mini-tts as SSE: upstream deltas re-sent, usage from speech.audio.done", async () => {
    const res = await client.audio.speech.create({ model: "openai/gpt-4o-mini-tts", input: "Hello.", voice: "coral", stream_format: "sse", instructions: "Cheerful." });
    const events = parseSse(await res.text());
    assert.equal(events.at(-1)!.data, "[DONE]");
    const json = events.slice(0, -1).map((e) => JSON.parse(e.data));
    for (const j of json) assertSchema("CreateSpeechResponseStreamEvent", j);
    const audio = Buffer.concat(json.filter((j) => j.type === "speech.audio.delta").map((j) => Buffer.from(j.audio, "base64")));
    assert.deepEqual(audio, fake.speechBytes);
    assert.deepEqual(json.at(-1), { type: "speech.audio.done", usage: fake.speechUsage });
    assert.equal(last().body.stream_format, "sse");
    assert.equal(last().body.instructions, "Cheerful.");
  });

  it("sends an SSE upstream's audio as a raw body when the client wants audio", async () => {
    const res = await client.audio.speech.create({ model: "openai/gpt-4o-mini-tts", input: "Hello.", voice: "coral" });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), fake.speechBytes);
  });

  it("asks the upstream for opus itself (no local ffmpeg needed) and passes it through", async () => {
    const res = await postJson(`${gw.baseUrl}/audio/speech`, { model: "openai/tts-1", input: "Hi.", voice: "alloy", response_format: "opus" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "audio/ogg; codecs=opus");
    assert.equal(last().body.response_format, "opus");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), fake.speechBytes);
  });

  it("aborts the upstream speech request when the client disconnects", async () => {
    const aborted = fake.nextAbort();
    const abort = new AbortController();
    const res = await fetch(`${gw.baseUrl}/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "openai/tts-1", input: "Hi.", voice: "slow" }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0, "the first piece arrives before the upstream is done");
    abort.abort();
    const rec = await aborted;
    assert.equal(rec.body.voice, "slow");
  });

  it("keeps an upstream 400 and its message", async () => {
    const res = await postJson(`${gw.baseUrl}/audio/speech`, { model: "openai/tts-1", input: "Hi.", voice: "fail" });
    assert.equal(res.status, 400);
    const e = ((await res.json()) as any).error;
    assert.match(e.message, /Invalid voice 'fail'/);
    assert.equal(e.param, "voice");
  });

  it("streams gpt-4o-transcribe with stream=true upstream, through the SDK", async () => {
    const wav = Buffer.concat([Buffer.from("RIFF"), Buffer.alloc(200, 1)]);
    const stream = await client.audio.transcriptions.create({
      file: await toFile(wav, "clip.wav", { type: "audio/wav" }),
      model: "openai/gpt-4o-transcribe",
      stream: true,
      language: "en",
      prompt: "A greeting.",
    });
    const events = [];
    for await (const e of stream) events.push(e);
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    assert.deepEqual(
      events.filter((e) => e.type === "transcript.text.delta").map((e) => (e as { delta: string }).delta),
      fake.transcriptDeltas,
    );
    const done = events.at(-1) as any;
    assert.equal(done.type, "transcript.text.done");
    assert.equal(done.text, fake.transcriptDeltas.join(""));
    assert.equal(done.usage.output_tokens, 5);
    const up = last();
    assert.deepEqual(up.body, { model: "gpt-4o-transcribe", language: "en", prompt: "A greeting.", response_format: "json", stream: "true" });
    assert.deepEqual(up.file, { name: "clip.wav", mimeType: "audio/wav", bytes: wav });
  });

  it("asks whisper-1 for verbose_json and turns its segments into a transcript, streamed or whole", async () => {
    const file = await toFile(Buffer.from("ID3 fake mp3"), "talk.mp3", { type: "audio/mpeg" });
    const verbose = await client.audio.transcriptions.create({ file, model: "openai/whisper-1", response_format: "verbose_json" });
    assert.equal(last().body.response_format, "verbose_json");
    assert.equal(last().body.stream, undefined);
    assert.equal(verbose.text, "Hello from the upstream.");
    assert.deepEqual(
      verbose.segments!.map((s) => [s.start, s.end, s.text]),
      fake.segments.map((s) => [s.start, s.end, s.text.trim()]),
    );
    assert.equal(verbose.duration, 3);
    const stream = await client.audio.transcriptions.create({ file: await toFile(Buffer.from("ID3 x"), "t.mp3"), model: "openai/whisper-1", stream: true });
    const deltas: string[] = [];
    for await (const e of stream) if (e.type === "transcript.text.delta") deltas.push(e.delta);
    assert.equal(deltas.join(""), "Hello from the upstream.");
  });

  it("keeps an upstream 400 on transcription", async () => {
    const form = new FormData();
    form.append("file", new Blob([Buffer.from("RIFF....")]), "a.wav");
    form.append("model", "openai/whisper-1");
    form.append("language", "xx");
    const res = await fetch(`${gw.baseUrl}/audio/transcriptions`, { method: "POST", body: form });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as any).error.message, /Unsupported language 'xx'/);
  });

  it("lists upstream audio models with their capabilities", async () => {
    const models: any = await (await fetch(`${gw.baseUrl}/models`)).json();
    const caps = Object.fromEntries(models.data.map((m: any) => [m.id, m.capabilities]));
    assert.deepEqual(caps["openai/tts-1"], ["speech"]);
    assert.deepEqual(caps["openai/whisper-1"], ["transcription"]);
    assert.deepEqual(caps["openai/gpt-4o-transcribe"], ["transcription"]);
  });
});
