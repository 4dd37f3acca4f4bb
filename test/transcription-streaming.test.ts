/**
 * `/v1/audio/transcriptions` with `stream=true` streaming while the upload
 * arrives, against a fake Deepgram (live WebSocket) and local pocketsphinx:
 * a raw client that sends the multipart body in parts and sends the rest
 * only once a `transcript.text.delta` came back proves that the first audio
 * reached the recognizer and the first text reached the client before the
 * body was complete (an ordering, not a timing). Also: the openai SDK with
 * the model before the file (streams from the first byte) and in its usual
 * order (the file waits for the model), the x-spillway-model header,
 * compressed containers passed to Deepgram as they are, and the errors —
 * unknown model, a field after the file that changes the request, a body
 * over the limit mid-stream, a client gone mid-upload, Deepgram refusing or
 * failing — with the upstream socket closed each time.
 */
import assert from "node:assert/strict";
import { createReadStream, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { DEEPGRAM_KEY, startFakeDeepgram, type FakeDeepgram } from "./helpers/fake-deepgram.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { gatedFetch, multipartAround, startUpload, type FormPart } from "./helpers/slow-upload.js";
import { ffmpegConvert, hasFfmpeg } from "./helpers/audio.js";
import { postJson } from "./helpers/sse.js";

const RATE = 16_000;
const LIMIT = 400_000;

function tone(ms: number): Buffer {
  const n = Math.round((RATE * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 300 * i) / RATE) * 9000), i * 2);
  return b;
}
const quiet = (ms: number): Buffer => Buffer.alloc(Math.round((RATE * ms) / 1000) * 2);

function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write("WAVEfmt ", 8, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(RATE, 24);
  h.writeUInt32LE(RATE * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** An utterance, a pause long enough for Deepgram's endpointing (300 ms) to end it, then a second one. */
const FIRST = Buffer.concat([quiet(100), tone(600), quiet(500)]);
const SECOND = Buffer.concat([tone(600), quiet(400)]);
const WAV = Buffer.concat([wavHeader(FIRST.length + SECOND.length), FIRST, SECOND]);
/** The WAV up to the end of the first utterance's pause. */
const WAV_FIRST = WAV.subarray(0, 44 + FIRST.length);
const WAV_REST = WAV.subarray(44 + FIRST.length);

const isDelta = (e: any): boolean => e?.type === "transcript.text.delta";
const isJson = (e: unknown): e is Record<string, any> => typeof e === "object" && e !== null;

let fake: FakeDeepgram;
let gw: TestGateway;
let client: OpenAI;
let url: string;

before(async () => {
  fake = await startFakeDeepgram();
  gw = await startTestGateway({
    grpc: { enabled: false },
    routing: { maxAttempts: 1 },
    http: { maxUploadBytes: LIMIT },
    providers: { deepgram: { type: "deepgram", baseUrl: fake.baseUrl, apiKey: DEEPGRAM_KEY } },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  url = `${gw.baseUrl}/audio/transcriptions`;
});
after(async () => {
  await gw.close();
  await fake.close();
});

const file = (filename = "speech.wav", type = "audio/wav"): FormPart => ({ name: "file", filename, type });

/** Starts an upload of `parts` (the file's bytes are sent by the test), sending the head of the form at once. */
function upload(parts: readonly FormPart[], headers: Record<string, string> = {}, contentLength?: number) {
  const form = multipartAround(parts);
  const u = startUpload(url, {
    "content-type": form.contentType,
    ...(contentLength !== undefined ? { "content-length": String(form.head.length + contentLength + form.tail.length) } : {}),
    ...headers,
  });
  u.send(form.head);
  return { ...u, tail: form.tail };
}

describe("stream=true with the model before the file: Deepgram hears the upload as it arrives", () => {
  it("the first audio reaches Deepgram and the first delta reaches the client before the body is complete", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file()], {}, WAV.length);
    u.send(WAV_FIRST);
    // Nothing more is sent until text came back: without streaming this would never resolve.
    const first = await u.waitForEvent(isDelta);
    const s = await session;
    const heard = Buffer.concat(s.audio).length;
    assert.ok(heard > 0, "Deepgram got audio before the upload ended");
    assert.ok(heard <= FIRST.length, `Deepgram got ${heard} bytes, at most the ${FIRST.length} sent so far`);
    assert.equal(first.delta, "Hello from Deepgram.");
    assert.equal((await u.head).status, 200);
    assert.ok(!s.control.includes('{"type":"CloseStream"}'), "the stream is still open");
    u.send(WAV_REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200);
    assert.equal(u.events.at(-1), "[DONE]");
    const events = u.events.slice(0, -1).filter(isJson);
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    assert.deepEqual(events.filter(isDelta).map((e) => e["delta"]), ["Hello from Deepgram.", " Hello from Deepgram."]);
    const done = events.at(-1)!;
    assert.equal(done["type"], "transcript.text.done");
    assert.equal(done["text"], "Hello from Deepgram. Hello from Deepgram.");
    const q = s.url.searchParams;
    assert.deepEqual([q.get("model"), q.get("encoding"), q.get("sample_rate")], ["nova-3", "linear16", "16000"]);
    // The WAV header was unwrapped: Deepgram got exactly the PCM.
    assert.deepEqual(Buffer.concat(s.audio), Buffer.concat([FIRST, SECOND]));
    assert.deepEqual(s.control.slice(-2), ['{"type":"Finalize"}', '{"type":"CloseStream"}']);
    assert.equal((await s.closed).code, 1000);
  });
});

describe("the openai SDK", () => {
  it("audio.transcriptions.create({ model, stream: true, file }): deltas before the SDK has sent the rest of the file", { timeout: 30_000 }, async () => {
    let firstDelta!: () => void;
    const gate = new Promise<void>((r) => (firstDelta = r));
    const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, fetch: gatedFetch(WAV_FIRST, gate) });
    const session = fake.nextSession();
    // The SDK writes the form in the object's order: model and stream, then the file.
    const stream = await sdk.audio.transcriptions.create({ model: "deepgram/nova-3", stream: true, file: await toFile(WAV, "speech.wav", { type: "audio/wav" }) });
    const events: any[] = [];
    let heardAtFirstDelta = -1;
    for await (const e of stream) {
      assertSchema("CreateTranscriptionResponseStreamEvent", e);
      events.push(e);
      if (e.type === "transcript.text.delta" && heardAtFirstDelta < 0) {
        heardAtFirstDelta = Buffer.concat((await session).audio).length;
        firstDelta();
      }
    }
    assert.ok(heardAtFirstDelta > 0 && heardAtFirstDelta <= FIRST.length, `Deepgram had ${heardAtFirstDelta} bytes at the first delta`);
    assert.deepEqual(events.filter((e) => e.type === "transcript.text.delta").map((e) => e.delta), ["Hello from Deepgram.", " Hello from Deepgram."]);
    assert.equal(events.at(-1).type, "transcript.text.done");
    assert.equal(events.at(-1).text, "Hello from Deepgram. Hello from Deepgram.");
    assert.equal(events.at(-1).usage.type, "tokens");
  });

  it("in the SDK's usual order (file first) the file waits for the model, then goes to Deepgram's REST API whole", async () => {
    const sessions = fake.sessions.length;
    const rest = fake.rest.length;
    const stream = await client.audio.transcriptions.create({ file: await toFile(WAV, "speech.wav", { type: "audio/wav" }), model: "deepgram/nova-3", stream: true });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    assert.equal(events.at(-1).text, "Hello from Deepgram.");
    assert.equal(fake.sessions.length, sessions, "no live stream");
    assert.equal(fake.rest.length, rest + 1);
    assert.deepEqual(fake.rest.at(-1)!.body, WAV);
  });

  it("a file given as a stream after the fields ({ model, stream, file: fs.createReadStream }): the SDK streams the form in that order, live", async () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-test-"));
    const path = join(dir, "speech.wav");
    writeFileSync(path, WAV);
    const session = fake.nextSession();
    const stream = await client.audio.transcriptions.create({ model: "deepgram/nova-3", stream: true, file: createReadStream(path) });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    assert.equal(events.at(-1).text, "Hello from Deepgram. Hello from Deepgram.");
    assert.equal((await session).url.searchParams.get("encoding"), "linear16");
  });

  it("non-streamed requests answer as before, whatever the order", async () => {
    const a = await client.audio.transcriptions.create({ model: "deepgram/nova-3", file: await toFile(WAV, "speech.wav", { type: "audio/wav" }) });
    assert.equal(a.text, "Hello from Deepgram.");
    const b = await client.audio.transcriptions.create({ file: await toFile(WAV, "speech.wav", { type: "audio/wav" }), model: "deepgram/nova-3", response_format: "verbose_json" });
    assert.deepEqual(b.segments?.map((s) => s.text), ["Hello from", "Deepgram."]);
    assertSchema("CreateTranscriptionResponseVerboseJson", b);
  });
});

describe("the x-spillway-model header: recognition starts at the first byte in any field order", () => {
  it("is allowed in a browser's CORS preflight", async () => {
    const res = await fetch(`${gw.origin}/v1/audio/transcriptions`, { method: "OPTIONS" });
    assert.equal(res.status, 204);
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
    assert.ok(allowed.includes("x-spillway-model"), allowed.join(","));
  });

  it("stream=true before the file, model after it: deltas during the upload", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    const u = upload([{ name: "stream", value: "true" }, file(), { name: "model", value: "deepgram/nova-3" }], { "x-spillway-model": "deepgram/nova-3" }, WAV.length);
    u.send(WAV_FIRST);
    const first = await u.waitForEvent(isDelta);
    assert.equal(first.delta, "Hello from Deepgram.");
    assert.ok(Buffer.concat((await session).audio).length <= FIRST.length);
    u.send(WAV_REST);
    u.end(u.tail);
    assert.equal((await u.done).status, 200);
    assert.equal(u.events.filter(isJson).at(-1)!["text"], "Hello from Deepgram. Hello from Deepgram.");
  });

  it("the SDK's order (file, model, stream): Deepgram hears the file while it uploads; the text streams once the form says stream=true", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    const u = upload([file(), { name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }], { "x-spillway-model": "deepgram/nova-3" });
    u.send(WAV_FIRST);
    const s = await session;
    // Resolves only if the audio went up before the rest of the body was sent.
    await s.waitForAudio(FIRST.length);
    assert.equal(u.events.length, 0, "no events before the form said how to answer");
    u.send(WAV_REST);
    u.end(u.tail);
    assert.equal((await u.done).status, 200);
    const events = u.events.filter(isJson);
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    assert.deepEqual(events.filter(isDelta).map((e) => e["delta"]), ["Hello from Deepgram.", " Hello from Deepgram."]);
  });

  it("non-streamed with the header: recognized live during the upload, answered whole (verbose_json segments from Deepgram's finals)", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    const u = upload([file(), { name: "response_format", value: "verbose_json" }], { "x-spillway-model": "deepgram/nova-3" });
    u.send(WAV_FIRST);
    await (await session).waitForAudio(FIRST.length);
    u.send(WAV_REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    assertSchema("CreateTranscriptionResponseVerboseJson", body);
    assert.equal(body.text, "Hello from Deepgram. Hello from Deepgram.");
    assert.equal(body.segments.length, 2);
  });

  it("a model field that differs from the header is a 400 naming 'model' (an error event once streaming); the upstream socket is closed", { timeout: 30_000 }, async () => {
    const early = upload([{ name: "model", value: "deepgram/nova-2" }, file()], { "x-spillway-model": "deepgram/nova-3" });
    early.send(WAV);
    early.end(early.tail);
    const r = await early.done;
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).error.param, "model");
    const session = fake.nextSession();
    const u = upload([{ name: "stream", value: "true" }, file(), { name: "model", value: "deepgram/nova-2" }], { "x-spillway-model": "deepgram/nova-3" });
    u.send(WAV_FIRST);
    await u.waitForEvent(isDelta);
    u.send(WAV_REST);
    u.end(u.tail);
    await u.done;
    const err = u.events.filter(isJson).find((e) => e["type"] === "error")!;
    assert.equal(err["error"].param, "model");
    assert.match(err["error"].message, /differs from the x-spillway-model header/);
    const s = await session;
    assert.ok(!s.control.includes('{"type":"CloseStream"}'), "the recognizer was not told the audio was complete");
    assert.equal((await s.closed).byClient, true);
  });

  it("a language after the file, once recognition started, is a 400 naming 'language' (send it first)", { timeout: 30_000 }, async () => {
    const u = upload([file(), { name: "model", value: "deepgram/nova-3" }, { name: "language", value: "de" }], { "x-spillway-model": "deepgram/nova-3" });
    u.send(WAV);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 400);
    const e = JSON.parse(r.body).error;
    assert.equal(e.param, "language");
    assert.match(e.message, /before the 'file' part/);
  });
});

describe("containers", () => {
  it("MP3 goes to Deepgram's live socket as it is (no encoding: Deepgram reads the container)", { skip: hasFfmpeg ? false : "ffmpeg is not installed", timeout: 30_000 }, async () => {
    const mp3 = await ffmpegConvert(WAV, "mp3");
    const session = fake.nextSession();
    const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file("speech.mp3", "audio/mpeg")], {}, mp3.length);
    u.send(mp3);
    u.end(u.tail);
    assert.equal((await u.done).status, 200);
    const s = await session;
    assert.equal(s.url.searchParams.get("encoding"), null);
    assert.equal(s.url.searchParams.get("sample_rate"), null);
    assert.deepEqual(Buffer.concat(s.audio), mp3);
    const events = u.events.filter(isJson);
    assert.ok(events.filter(isDelta).length >= 2, JSON.stringify(events));
    assert.equal(events.at(-1)!["type"], "transcript.text.done");
  });

  it("M4A (its index may be at the end) goes to the REST API whole", { skip: hasFfmpeg ? false : "ffmpeg is not installed", timeout: 30_000 }, async () => {
    const m4a = await ffmpegConvert(WAV, "m4a");
    const sessions = fake.sessions.length;
    const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file("speech.m4a", "audio/mp4")], {}, m4a.length);
    u.send(m4a);
    u.end(u.tail);
    assert.equal((await u.done).status, 200);
    assert.equal(fake.sessions.length, sessions);
    assert.deepEqual(fake.rest.at(-1)!.body, m4a);
    assert.equal(u.events.filter(isJson).at(-1)!["text"], "Hello from Deepgram.");
  });
});

describe("bad input and failures while streaming", () => {
  const expectError = async (u: ReturnType<typeof upload>, status: number, param: string | null, message: RegExp): Promise<void> => {
    const r = await u.done;
    assert.equal(r.status, status, r.body);
    const e = JSON.parse(r.body).error;
    assert.equal(e.param, param);
    assert.match(e.message, message);
  };

  it("an unknown model before the file is refused before the upload has finished", async () => {
    const u = upload([{ name: "model", value: "nope/whisper" }, { name: "stream", value: "true" }, file()], {}, WAV.length);
    u.send(WAV_FIRST);
    const h = await u.head;
    assert.ok(h.status === 400 || h.status === 404, `status ${h.status}`);
    u.destroy();
  });

  it("no file part is a 400 naming 'file'; a file part of another name too; a JSON body a 415", async () => {
    const a = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }]);
    a.end(Buffer.from("--slow-upload-boundary--\r\n"));
    await expectError(a, 400, "file", /Missing required parameter: 'file'/);
    const b = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "audio", filename: "a.wav", type: "audio/wav" }]);
    b.send(WAV);
    b.end(b.tail);
    await expectError(b, 400, "file", /Missing required parameter: 'file'/);
    const c = await postJson(url, { model: "deepgram/nova-3", stream: true }, { headers: { "x-spillway-model": "deepgram/nova-3" } });
    assert.equal(c.status, 415);
    assert.match(((await c.json()) as any).error.message, /multipart\/form-data/);
  });

  it("a file first with no model anywhere is a 400 naming 'model'; an empty file a 400 naming 'file'", async () => {
    const a = upload([file(), { name: "stream", value: "true" }]);
    a.send(WAV);
    a.end(a.tail);
    await expectError(a, 400, "model", /Missing required parameter: 'model'/);
    const b = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file()]);
    b.end(b.tail);
    await expectError(b, 400, "file", /empty/);
  });

  it("a body over the limit mid-stream: an error event saying so, the recognizer stopped and Deepgram's socket closed", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    // Chunked: no declared length, so the limit is found while reading.
    const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file()]);
    u.send(WAV_FIRST);
    await u.waitForEvent(isDelta);
    const more = quiet(250);
    while (u.sent() < LIMIT + more.length) u.send(more);
    const err = await u.waitForEvent((e) => e?.type === "error");
    assert.match(err.error.message, /larger than the limit of 400000 bytes/);
    assert.equal(err.error.code, "request_too_large");
    const s = await session;
    assert.equal((await s.closed).byClient, true, "the gateway closed the upstream socket");
    assert.ok(!s.control.includes('{"type":"CloseStream"}'));
    assert.ok(Buffer.concat(s.audio).length < LIMIT, "Deepgram did not get the audio past the limit");
    const r = await u.done;
    assert.ok(!r.body.includes("[DONE]"));
    u.destroy();
  });

  it("a client that goes away mid-upload: Deepgram's socket is closed without CloseStream", { timeout: 30_000 }, async () => {
    const session = fake.nextSession();
    const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file()], {}, WAV.length);
    u.send(WAV_FIRST);
    await u.waitForEvent(isDelta);
    u.destroy();
    const s = await session;
    assert.equal((await s.closed).byClient, true);
    assert.ok(!s.control.includes('{"type":"CloseStream"}'));
  });

  it("Deepgram refusing the stream: a real status before the upload has finished", async () => {
    fake.script = { refuseStatus: 400, refuseBody: { err_code: "Bad Request", err_msg: "No such model/language/tier combination found.", request_id: "r" } };
    try {
      const u = upload([{ name: "model", value: "deepgram/nova-9" }, { name: "stream", value: "true" }, file()], {}, WAV.length);
      u.send(WAV_FIRST);
      const h = await u.head;
      assert.equal(h.status, 400);
      u.destroy();
      const r = await u.done;
      const e = JSON.parse(r.body).error;
      assert.equal(e.param, "model");
      assert.match(e.message, /No such model/);
    } finally {
      fake.script = {};
    }
  });

  it("Deepgram failing mid-stream: an error event after what was heard, no [DONE]", { timeout: 30_000 }, async () => {
    fake.script = { closeAfterResults: 3 };
    try {
      const u = upload([{ name: "model", value: "deepgram/nova-3" }, { name: "stream", value: "true" }, file()], {}, WAV.length);
      u.send(WAV);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 200);
      const events = u.events.filter(isJson);
      const err = events.find((e) => e["type"] === "error")!;
      assert.ok(err, JSON.stringify(u.events));
      assert.match(err["error"].message, /deepgram/i);
      assert.ok(!u.events.includes("[DONE]"));
    } finally {
      fake.script = {};
    }
  });
});
