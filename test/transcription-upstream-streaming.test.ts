/**
 * `/v1/audio/transcriptions` forwarding the upload to an OpenAI-compatible
 * upstream while it arrives: a raw client sends the multipart body in parts
 * and a fake OpenAI upstream (test/helpers/fake-openai-transcription.ts)
 * records the file's bytes as they reach it, so a test can hold the rest of
 * the body back until the upstream has the first part — an ordering, not a
 * timing. Covers the start rule (model first with or without stream=true,
 * the x-spillway-model header in any order, file first without it: held),
 * fields after the file sent after it upstream, the openai SDK with the
 * header, Azure's layout, backpressure (a paused upstream pauses the
 * client's upload), and the faults: the upstream closing mid-upload or
 * refusing after the body, the client leaving, a body over the limit, a
 * late field that changes the model — with the upstream request aborted
 * each time — and no retry of a streamed body.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { UPLOAD_FLOW_CHANNEL } from "../src/doors/http/multipart.js";
import { startFakeOpenAiTranscription, type FakeOpenAiTranscription, type TranscriptionUpload } from "./helpers/fake-openai-transcription.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { gatedFetch, multipartAround, startUpload, type FormPart } from "./helpers/slow-upload.js";

const LIMIT = 64 * 1024 * 1024;
/** Random bytes: any prefix of them is found only where it was sent. */
const AUDIO = randomBytes(300_000);
const FIRST = AUDIO.subarray(0, 100_000);
const REST = AUDIO.subarray(100_000);

let fake: FakeOpenAiTranscription;
let gw: TestGateway;
let url: string;

before(async () => {
  fake = await startFakeOpenAiTranscription();
  gw = await startTestGateway({
    grpc: { enabled: false },
    // Retries and a fallback on: a streamed body is still sent once; a held one is retried.
    routing: { maxAttempts: 3, baseDelayMs: 1, breakerThreshold: 100, fallbacks: { "openai/whisper-1": ["azure/transcriber"] } },
    http: { maxUploadBytes: LIMIT },
    providers: {
      openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["gpt-4o-transcribe", "whisper-1"] },
      azure: { type: "azure", baseUrl: fake.baseUrl.replace(/\/v1$/, ""), apiKey: "az-key", apiVersion: "2025-03-01-preview", models: ["transcriber"] },
    },
  });
  url = `${gw.baseUrl}/audio/transcriptions`;
});
after(async () => {
  await gw.close();
  await fake.close();
});

const file = (): FormPart => ({ name: "file", filename: "speech.wav", type: "audio/wav" });
const field = (name: string, value: string): FormPart => ({ name, value });
const isJson = (e: unknown): e is Record<string, any> => typeof e === "object" && e !== null;

/** Starts an upload of `parts`, sending the form up to the file's data at once; the test sends the file. */
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

/** Sends FIRST, waits until the upstream has all of it while the client still holds the rest, then sends the rest. */
async function firstPartReachesUpstream(u: ReturnType<typeof upload>): Promise<TranscriptionUpload> {
  const next = fake.nextUpload();
  u.send(FIRST);
  const up = await next;
  // Resolves only if the gateway forwarded the bytes before the body had ended.
  await up.waitForFileBytes(FIRST.length);
  assert.equal(up.complete, false, "the upstream request is still open");
  assert.equal(u.sent() < (u.tail.length + AUDIO.length), true);
  return up;
}

describe("the upload streams into the upstream request as it arrives", () => {
  it("model and stream=true before the file: the upstream has the first bytes before the client sent the rest; its SSE is relayed", { timeout: 30_000 }, async () => {
    const u = upload([field("model", "openai/gpt-4o-transcribe"), field("stream", "true"), field("language", "en"), file()]);
    const up = await firstPartReachesUpstream(u);
    assert.equal(up.fileBytes, FIRST.length, "the upstream got exactly what was sent so far");
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    assert.equal(u.events.at(-1), "[DONE]");
    const events = u.events.filter(isJson);
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    assert.deepEqual(events.filter((e) => e["type"] === "transcript.text.delta").map((e) => e["delta"]), fake.deltas);
    assert.equal(events.at(-1)!["text"], fake.deltas.join(""));
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
    assert.deepEqual(up.body(), { model: "gpt-4o-transcribe", language: "en", response_format: "json", stream: "true" });
    assert.ok(up.fields.every((f) => f.fileBytesBefore === 0), "every field went before the file");
    assert.equal(up.headers.authorization, "Bearer sk-up");
  });

  it("model before the file, not streamed (new: no longer held): whisper-1 gets the file during the upload; fields after the file go after it upstream", { timeout: 30_000 }, async () => {
    const u = upload([field("model", "openai/whisper-1"), file(), field("language", "de"), field("prompt", "Ein Gruß."), field("response_format", "verbose_json")]);
    const up = await firstPartReachesUpstream(u);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body);
    assertSchema("CreateTranscriptionResponseVerboseJson", body);
    assert.equal(body.text, fake.deltas.join(""));
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
    assert.deepEqual(up.body(), { model: "whisper-1", response_format: "verbose_json", language: "de", prompt: "Ein Gruß." });
    const late = up.fields.filter((f) => f.name === "language" || f.name === "prompt");
    assert.deepEqual(late.map((f) => f.fileBytesBefore), [AUDIO.length, AUDIO.length], "language and prompt were sent after the file, as the client sent them");
  });

  it("the x-spillway-model header with the file first (the SDK's order): streamed during the upload; response_format after the file is honoured (srt)", { timeout: 30_000 }, async () => {
    const u = upload([file(), field("model", "openai/whisper-1"), field("response_format", "srt")], { "x-spillway-model": "openai/whisper-1" });
    const up = await firstPartReachesUpstream(u);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /^1\n00:00:00,000 --> 00:00:02,500\nHello from the upstream\.\n/);
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
  });

  it("Azure deployments stream the same way (deployment URL, api-key)", { timeout: 30_000 }, async () => {
    const u = upload([field("model", "azure/transcriber"), file()]);
    const up = await firstPartReachesUpstream(u);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).text, fake.deltas.join(""));
    assert.match(up.url, /^\/openai\/deployments\/transcriber\/audio\/transcriptions\?api-version=2025-03-01-preview$/);
    assert.equal(up.headers["api-key"], "az-key");
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
  });

  it("the file first without the header: held until the form ends (the model picks the provider), then sent", { timeout: 30_000 }, async () => {
    const before = fake.uploads.length;
    const u = upload([file(), field("model", "openai/whisper-1")]);
    u.send(FIRST);
    // The gateway cannot know the provider yet: nothing goes upstream until the form has ended.
    const r0 = await Promise.race([fake.nextUpload().then(() => "opened"), sleep(300).then(() => "waiting")]);
    assert.equal(r0, "waiting");
    assert.equal(fake.uploads.length, before);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(Buffer.concat(fake.uploads.at(-1)!.pieces), AUDIO);
  });
});

describe("the openai SDK with x-spillway-model", () => {
  it("create({ file, model, language, stream: true }, { headers }): the upstream has the first bytes before the SDK sends the rest; language follows the file upstream", { timeout: 30_000 }, async () => {
    const gate = fake.nextUpload().then((up) => up.waitForFileBytes(FIRST.length).then(() => up));
    const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, fetch: gatedFetch(FIRST, gate) });
    const stream = await sdk.audio.transcriptions.create(
      { file: await toFile(AUDIO, "speech.wav", { type: "audio/wav" }), model: "openai/gpt-4o-transcribe", language: "fr", stream: true },
      { headers: { "x-spillway-model": "openai/gpt-4o-transcribe" } },
    );
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    assert.deepEqual(events.filter((e) => e.type === "transcript.text.delta").map((e) => e.delta), fake.deltas);
    assert.equal(events.at(-1).type, "transcript.text.done");
    const up = await gate;
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
    const language = up.fields.find((f) => f.name === "language")!;
    assert.equal(language.value, "fr");
    assert.equal(language.fileBytesBefore, AUDIO.length);
  });

  it("without the header, { model, language, file: fs.createReadStream }: the SDK streams the form in that order, whisper-1 gets the file during the upload", { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-test-"));
    const path = join(dir, "speech.wav");
    writeFileSync(path, AUDIO);
    const gate = fake.nextUpload().then((up) => up.waitForFileBytes(FIRST.length).then(() => up));
    const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, fetch: gatedFetch(FIRST, gate) });
    const t = await sdk.audio.transcriptions.create({ model: "openai/whisper-1", language: "en", file: createReadStream(path) });
    assert.equal(t.text, fake.deltas.join(""));
    const up = await gate;
    assert.deepEqual(Buffer.concat(up.pieces), AUDIO);
    assert.equal(up.body()["language"], "en");
  });

  it("non-streamed create({ file, model }) with the header: json through the SDK", { timeout: 30_000 }, async () => {
    const gate = fake.nextUpload().then((up) => up.waitForFileBytes(FIRST.length).then(() => up));
    const sdk = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, fetch: gatedFetch(FIRST, gate) });
    const t = await sdk.audio.transcriptions.create(
      { file: await toFile(AUDIO, "speech.wav", { type: "audio/wav" }), model: "openai/whisper-1" },
      { headers: { "x-spillway-model": "openai/whisper-1" } },
    );
    assert.equal(t.text, fake.deltas.join(""));
    assert.deepEqual(Buffer.concat((await gate).pieces), AUDIO);
  });
});

describe("faults", () => {
  const errorOf = (body: string): any => JSON.parse(body).error;

  it("the upstream closing mid-upload: a 502 before the client finished its upload", { timeout: 30_000 }, async () => {
    fake.script = { closeAfterFileBytes: 1 };
    try {
      // A declared length: the answer goes out at once (a chunked body is drained first: see the lingering close).
      const u = upload([field("model", "openai/whisper-1"), file()], {}, AUDIO.length);
      const next = fake.nextUpload();
      u.send(FIRST);
      const up = await next;
      assert.equal((await up.closed).complete, false);
      const head = await u.head;
      assert.equal(head.status, 502);
      u.destroy();
      const r = await u.done;
      assert.match(errorOf(r.body).message, /openai: upstream unreachable/);
    } finally {
      fake.script = {};
    }
  });

  it("the upstream refusing after the whole body (400): its status and message, once", { timeout: 30_000 }, async () => {
    fake.script = { statusAfterBody: 400 };
    try {
      const before = fake.uploads.length;
      const u = upload([field("model", "openai/gpt-4o-transcribe"), field("stream", "true"), file()]);
      await firstPartReachesUpstream(u);
      u.send(REST);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 400);
      const e = errorOf(r.body);
      assert.match(e.message, /Invalid file format/);
      assert.equal(e.param, "file");
      assert.equal(fake.uploads.length, before + 1);
    } finally {
      fake.script = {};
    }
  });

  it("the upstream's transcript stream cut short after the body: the deltas it sent, then an error event, no [DONE]", { timeout: 30_000 }, async () => {
    fake.script = { cutAfterDeltas: 2 };
    try {
      const u = upload([field("model", "openai/gpt-4o-transcribe"), field("stream", "true"), file()]);
      await firstPartReachesUpstream(u);
      u.send(REST);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 200);
      const events = u.events.filter(isJson);
      assert.deepEqual(events.filter((e) => e["type"] === "transcript.text.delta").map((e) => e["delta"]), fake.deltas.slice(0, 2));
      const err = events.at(-1)!;
      assert.equal(err["type"], "error");
      assert.match(err["error"].message, /without transcript\.text\.done/);
      assert.ok(!u.events.includes("[DONE]"));
    } finally {
      fake.script = {};
    }
  });

  it("no retry or fallback of a streamed body: an upstream 503 is sent once (routing.maxAttempts 3, a fallback configured) and answered 502", { timeout: 30_000 }, async () => {
    fake.script = { statusAtOnce: 503 };
    try {
      const before = fake.uploads.length;
      const u = upload([field("model", "openai/whisper-1"), file()], {}, AUDIO.length);
      u.send(AUDIO);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 502, r.body);
      assert.match(errorOf(r.body).message, /overloaded/);
      assert.equal(fake.uploads.length, before + 1, "one upstream request");
    } finally {
      fake.script = {};
    }
  });

  it("a held file (file first, no header) is retried: a 503 then a success, two upstream requests, the same bytes", { timeout: 30_000 }, async () => {
    fake.script = { statusAtOnce: 503, statusAtOnceTimes: 1 };
    try {
      const before = fake.uploads.length;
      const u = upload([file(), field("model", "openai/whisper-1")], {}, AUDIO.length);
      u.send(AUDIO);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).text, fake.deltas.join(""));
      assert.equal(fake.uploads.length, before + 2);
      assert.deepEqual(Buffer.concat(fake.uploads.at(-1)!.pieces), AUDIO);
    } finally {
      fake.script = {};
    }
  });

  it("a held file falls back to the next model (routing.fallbacks) once its retries failed", { timeout: 30_000 }, async () => {
    fake.script = { statusAtOnce: 503, statusAtOnceTimes: 3 };
    try {
      const before = fake.uploads.length;
      const u = upload([file(), field("model", "openai/whisper-1")], {}, AUDIO.length);
      u.send(AUDIO);
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 200, r.body);
      const tried = fake.uploads.slice(before).map((x) => x.url.split("?")[0]);
      assert.deepEqual(tried, ["/v1/audio/transcriptions", "/v1/audio/transcriptions", "/v1/audio/transcriptions", "/openai/deployments/transcriber/audio/transcriptions"]);
    } finally {
      fake.script = {};
    }
  });

  it("the client leaving mid-upload aborts the upstream request at once", { timeout: 30_000 }, async () => {
    const u = upload([field("model", "openai/whisper-1"), file()]);
    const up = await firstPartReachesUpstream(u);
    u.destroy();
    assert.deepEqual(await up.closed, { complete: false });
    assert.equal(up.fileBytes, FIRST.length);
  });

  it("a body over the limit mid-upload: 413, the upstream request aborted short of the limit", { timeout: 30_000 }, async () => {
    const small = await startTestGateway({
      grpc: { enabled: false },
      http: { maxUploadBytes: 250_000 },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["whisper-1"] } },
    });
    try {
      const form = multipartAround([field("model", "openai/whisper-1"), file()]);
      // Chunked: no declared length, so the limit is found while reading.
      const u = startUpload(`${small.baseUrl}/audio/transcriptions`, { "content-type": form.contentType });
      u.send(form.head);
      const next = fake.nextUpload();
      u.send(FIRST);
      const up = await next;
      await up.waitForFileBytes(FIRST.length);
      u.send(REST);
      const head = await u.head;
      assert.equal(head.status, 413);
      assert.equal((await up.closed).complete, false);
      assert.ok(up.fileBytes < 250_000, `the upstream got ${up.fileBytes} bytes`);
      u.destroy();
      // A declared length over the limit: refused at once, no upstream request.
      const before = fake.uploads.length;
      const v = startUpload(`${small.baseUrl}/audio/transcriptions`, { "content-type": form.contentType, "content-length": String(LIMIT) });
      v.send(form.head);
      assert.equal((await v.head).status, 413);
      v.destroy();
      assert.equal(fake.uploads.length, before);
    } finally {
      await small.close();
    }
  });

  it("a model after the file that differs from the header: 400 naming 'model', the upstream request aborted", { timeout: 30_000 }, async () => {
    const u = upload([file(), field("model", "openai/gpt-4o-transcribe")], { "x-spillway-model": "openai/whisper-1" });
    const up = await firstPartReachesUpstream(u);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 400);
    assert.equal(errorOf(r.body).param, "model");
    assert.deepEqual(await up.closed, { complete: false });
  });
});

describe("backpressure", () => {
  it("a client that leaves while its upload is paused: the upstream request ends incomplete (noticed once the bytes it had sent are read)", { timeout: 60_000 }, async () => {
    const piece = randomBytes(64 * 1024);
    fake.script = { pauseAfterFileBytes: 1 };
    const flow: unknown[] = [];
    const onFlow = (m: unknown): void => void flow.push(m);
    subscribe(UPLOAD_FLOW_CHANNEL, onFlow);
    try {
      const u = upload([field("model", "openai/whisper-1"), file()]);
      const next = fake.nextUpload();
      for (let i = 0; i < 64 * 16; i++) {
        if (u.send(piece)) continue;
        if (await Promise.race([u.drain().then(() => false), sleep(1000).then(() => true)])) break;
      }
      assert.ok(flow.length > 0, "the gateway paused the upload");
      const sent = u.sent();
      const up = await next;
      u.destroy();
      fake.resumeReading();
      assert.deepEqual(await up.closed, { complete: false });
      assert.ok(up.fileBytes < sent, "the upstream did not get a complete file");
    } finally {
      fake.script = {};
      fake.resumeReading();
      unsubscribe(UPLOAD_FLOW_CHANNEL, onFlow);
    }
  });

  it("an upstream that stops reading pauses the client's upload; it resumes and completes when the upstream reads again", { timeout: 60_000 }, async () => {
    const flow: Array<{ paused: boolean; queued: number }> = [];
    const onFlow = (m: unknown): void => void flow.push(m as { paused: boolean; queued: number });
    subscribe(UPLOAD_FLOW_CHANNEL, onFlow);
    const TOTAL = 48 * 1024 * 1024;
    const piece = randomBytes(64 * 1024);
    fake.script = { pauseAfterFileBytes: 1 };
    try {
      const u = upload([field("model", "openai/whisper-1"), file()], {}, TOTAL);
      const next = fake.nextUpload();
      // Sends until the socket stays full for a second: the client is blocked.
      let blocked = false;
      while (u.sent() < TOTAL) {
        if (u.send(piece)) continue;
        blocked = await Promise.race([u.drain().then(() => false), sleep(1000).then(() => true)]);
        if (blocked) break;
      }
      assert.ok(blocked, "the client could send the whole body while the upstream read nothing");
      const up = await next;
      assert.ok(u.sent() < TOTAL, `sent ${u.sent()} of ${TOTAL}`);
      const paused = flow.find((f) => f.paused);
      assert.ok(paused, "the gateway paused the upload");
      assert.ok(paused.queued <= 2 * 1024 * 1024, `held ${paused.queued} unread bytes when it paused`);
      fake.resumeReading();
      // One 'drain' listener per refused write (a listener per write would pile up on the socket).
      while (u.sent() < TOTAL) if (!u.send(piece)) await u.drain();
      u.end(u.tail);
      const r = await u.done;
      assert.equal(r.status, 200, r.body);
      assert.equal(up.fileBytes, TOTAL);
      assert.ok(flow.some((f) => !f.paused), "the upload was resumed");
    } finally {
      fake.script = {};
      unsubscribe(UPLOAD_FLOW_CHANNEL, onFlow);
    }
  });
});

describe("timeouts while the upload arrives (provider timeoutMs 1500)", () => {
  let quick: TestGateway;
  before(async () => {
    quick = await startTestGateway({
      grpc: { enabled: false },
      http: { maxUploadBytes: LIMIT },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["whisper-1"], timeoutMs: 1500 } },
    });
  });
  after(() => quick.close());
  const quickUpload = (parts: readonly FormPart[]) => {
    const form = multipartAround(parts);
    const u = startUpload(`${quick.baseUrl}/audio/transcriptions`, { "content-type": form.contentType });
    u.send(form.head);
    return { ...u, tail: form.tail };
  };

  it("an upload slower than the first-chunk timeout succeeds: each piece the upstream takes counts as life", { timeout: 30_000 }, async () => {
    const u = quickUpload([field("model", "openai/whisper-1"), file()]);
    const next = fake.nextUpload();
    // An answer before the upload ends (the 504 of a timeout that fired) fails the wait at once, with its body.
    const early = u.done.then((r) => Promise.reject(new Error(`the gateway answered mid-upload: ${r.status} ${r.body}`)));
    early.catch(() => undefined);
    const pieces = 30;
    const size = Math.ceil(AUDIO.length / pieces);
    let up: TranscriptionUpload | undefined;
    for (let i = 0; i < pieces; i++) {
      const piece = AUDIO.subarray(i * size, (i + 1) * size);
      u.send(piece);
      up ??= await Promise.race([next, early]);
      // Each piece reaches the upstream before the next is sent; 30 gaps of 100 ms are twice the
      // 1500 ms timeout, and each gap leaves 1.4 s of margin for a loaded machine.
      // Less a delimiter's length: a multipart parser holds back the bytes at the end of what it
      // has that could start the boundary, until more come (waiting for all of them hung here).
      await Promise.race([up.waitForFileBytes(Math.min(AUDIO.length, (i + 1) * size) - 100), early]);
      await sleep(100);
    }
    u.end(u.tail);
    const r = await u.done;
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(Buffer.concat(up!.pieces), AUDIO);
  });

  it("an upstream that stops reading mid-upload: the client gets a 504 at the first-chunk timeout, the upstream request is aborted", { timeout: 30_000 }, async () => {
    const piece = randomBytes(64 * 1024);
    const TOTAL = 48 * 1024 * 1024;
    fake.script = { pauseAfterFileBytes: 1 };
    try {
      const form = multipartAround([field("model", "openai/whisper-1"), file()]);
      const u = startUpload(`${quick.baseUrl}/audio/transcriptions`, {
        "content-type": form.contentType,
        "content-length": String(form.head.length + TOTAL + form.tail.length),
      });
      u.send(form.head);
      const next = fake.nextUpload();
      const head = u.head;
      // The client sends while it can; the upload is paused behind the upstream.
      // It stops once the gateway answered (racing drain against a settled head would spin).
      let answered = false;
      void head.finally(() => (answered = true)).catch(() => undefined);
      void (async () => {
        while (!answered && u.sent() < TOTAL) if (!u.send(piece)) await Promise.race([u.drain(), head]);
      })().catch(() => undefined);
      const up = await next;
      assert.equal((await head).status, 504);
      u.destroy();
      const r = await u.done;
      assert.match(JSON.parse(r.body).error.message, /openai: the upstream did not start streaming within 1500 ms/);
      // A paused reader sees the close once it reads again.
      fake.resumeReading();
      assert.deepEqual(await up.closed, { complete: false });
    } finally {
      fake.script = {};
      fake.resumeReading();
    }
  });
});
