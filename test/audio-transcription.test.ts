/**
 * POST /v1/audio/transcriptions with the local pocketsphinx engine, end to
 * end over loopback: a round trip through local speech, the openai SDK's
 * streaming transcription, response formats, upload limits read from a raw
 * socket, client disconnects and bad input.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI, { toFile } from "openai";
import { ffmpegConvert, hasFfmpeg, pathWith, withPath } from "./helpers/audio.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { childProcesses, waitFor } from "./helpers/processes.js";
import { postJson, readSse } from "./helpers/sse.js";

const TEXT = "Hello world. The quick brown fox jumps over the lazy dog. We will go to the park today.";

/** Posts a multipart form built from `parts` (Blobs become files). */
function postForm(url: string, parts: Record<string, string | { data: Uint8Array; name: string; type: string }>, signal?: AbortSignal): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(parts)) {
    if (typeof v === "string") form.append(k, v);
    else form.append(k, new Blob([v.data], { type: v.type }), v.name);
  }
  return fetch(url, { method: "POST", body: form, ...(signal ? { signal } : {}) });
}

describe("POST /v1/audio/transcriptions with local/stt", () => {
  let gw: TestGateway;
  let client: OpenAI;
  let url: string;
  let wav: Buffer;
  before(async () => {
    gw = await startTestGateway({ grpc: { enabled: false } });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
    url = `${gw.baseUrl}/audio/transcriptions`;
    const res = await postJson(`${gw.baseUrl}/audio/speech`, { model: "local/tts", input: TEXT, voice: "alloy", response_format: "wav" });
    assert.equal(res.status, 200);
    wav = Buffer.from(await res.arrayBuffer());
  });
  after(() => gw.close());

  it("round trip: local speech (wav) in, several transcript.text.delta events as it is recognized, then done and [DONE]", async () => {
    const res = await postForm(url, { file: { data: wav, name: "speech.wav", type: "audio/wav" }, model: "local/stt", stream: "true" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events: Array<{ read: number; data: string }> = [];
    let reads = 0;
    const reader = res.body!.getReader();
    // Count network reads: events that come in different reads were sent at different times.
    const body = new Response(
      new ReadableStream({
        async pull(c) {
          const r = await reader.read();
          if (r.done) c.close();
          else {
            reads++;
            c.enqueue(r.value);
          }
        },
      }),
    );
    await readSse(body, (e) => {
      events.push({ read: reads, data: e.data });
    });
    assert.equal(events.at(-1)!.data, "[DONE]");
    const json = events.slice(0, -1).map((e) => ({ read: e.read, ...JSON.parse(e.data) }));
    for (const e of events.slice(0, -1)) assertSchema("CreateTranscriptionResponseStreamEvent", JSON.parse(e.data));
    const deltas = json.filter((j) => j.type === "transcript.text.delta");
    const done = json.at(-1);
    assert.equal(done.type, "transcript.text.done");
    assert.ok(deltas.length >= 3, `several deltas (${deltas.length})`);
    for (const d of deltas) assert.equal(d.text, d.delta, "the seed's `text` key beside `delta`");
    assert.equal(deltas.map((d) => d.delta).join(""), done.text);
    assert.ok(done.text.trim().split(/\s+/).length >= 3, `a non-empty transcript: '${done.text}'`);
    assert.ok(done.usage.output_tokens > 0);
    assert.ok(deltas[0].read < done.read, "the first text was sent before the transcription ended");
  });

  it("works with the openai SDK's audio.transcriptions.create({ stream: true })", async () => {
    const stream = await client.audio.transcriptions.create({
      file: await toFile(wav, "speech.wav", { type: "audio/wav" }),
      model: "local/stt",
      stream: true,
    });
    const types: string[] = [];
    let text = "";
    let final = "";
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "transcript.text.delta") text += e.delta;
      if (e.type === "transcript.text.done") final = e.text;
    }
    assert.ok(types.filter((t) => t === "transcript.text.delta").length >= 2);
    assert.equal(types.at(-1), "transcript.text.done");
    assert.equal(text, final);
    assert.ok(final.length > 0);
  });

  it("answers json, text and verbose_json (with segments) without streaming", async () => {
    const json = await client.audio.transcriptions.create({ file: await toFile(wav, "a.wav"), model: "local/stt" });
    assert.ok(json.text.length > 0);
    assertSchema("CreateTranscriptionResponseJson", json);
    const text = await client.audio.transcriptions.create({ file: await toFile(wav, "a.wav"), model: "local/stt", response_format: "text" });
    assert.equal(String(text).trim(), json.text);
    const verbose = await client.audio.transcriptions.create({ file: await toFile(wav, "a.wav"), model: "local/stt", response_format: "verbose_json" });
    assertSchema("CreateTranscriptionResponseVerboseJson", verbose);
    assert.ok(verbose.segments!.length >= 2, `one segment per sentence (${verbose.segments!.length})`);
    assert.ok(verbose.duration > 4 && verbose.duration < 12, `duration ${verbose.duration}`);
    for (const s of verbose.segments!) {
      assertSchema("TranscriptionSegment", s);
      assert.ok(s.end > s.start && s.end <= verbose.duration + 0.1);
    }
    const srt = await postForm(url, { file: { data: wav, name: "a.wav", type: "audio/wav" }, model: "local/stt", response_format: "srt" });
    assert.match(await srt.text(), /^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S/);
  });

  it("accepts MP3 uploads", async () => {
    const mp3 = Buffer.from(await (await client.audio.speech.create({ model: "local/tts", input: TEXT, voice: "alloy" })).arrayBuffer());
    const r = await client.audio.transcriptions.create({ file: await toFile(mp3, "speech.mp3"), model: "local/stt" });
    assert.ok(r.text.split(" ").length >= 3, r.text);
  });

  it("accepts M4A uploads through ffmpeg", { skip: hasFfmpeg ? false : "ffmpeg is not installed" }, async () => {
    const m4a = await ffmpegConvert(wav, "m4a");
    const r = await client.audio.transcriptions.create({ file: await toFile(m4a, "speech.m4a"), model: "local/stt" });
    assert.ok(r.text.split(" ").length >= 3, r.text);
  });

  it("kills pocketsphinx when the client disconnects mid-transcription, leaving no zombie", async () => {
    const long = Buffer.from(
      await (await postJson(`${gw.baseUrl}/audio/speech`, { model: "local/tts", input: `${TEXT} ${TEXT} ${TEXT} ${TEXT}`, voice: "alloy", response_format: "wav" })).arrayBuffer(),
    );
    const abort = new AbortController();
    const res = await postForm(url, { file: { data: long, name: "a.wav", type: "audio/wav" }, model: "local/stt", stream: "true" }, abort.signal);
    await readSse(res, () => "stop").catch(() => undefined);
    assert.ok(childProcesses().some((c) => c.name.startsWith("pocketsphinx")), "pocketsphinx is still recognizing");
    abort.abort();
    await waitFor(() => !childProcesses().some((c) => c.name.startsWith("pocketsphinx")), 5000, "pocketsphinx to be killed and reaped");
    assert.deepEqual(childProcesses().filter((c) => c.state === "Z"), [], "no zombie children");
  });

  it("lists local/stt as unavailable and answers 503 when pocketsphinx is not installed", async () => {
    await withPath(await pathWith(["espeak-ng"]), async () => {
      const models: any = await (await fetch(`${gw.baseUrl}/models`)).json();
      const stt = models.data.find((m: any) => m.id === "local/stt");
      assert.equal(stt.available, false);
      assert.equal(stt.unavailable_reason, "install pocketsphinx and pocketsphinx-en-us");
      const res = await postForm(url, { file: { data: wav, name: "a.wav", type: "audio/wav" }, model: "local/stt" });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as any).error.message, /install pocketsphinx/);
    });
  });

  describe("bad input", () => {
    const expectError = async (res: Response, status: number, param: string | null, message: RegExp): Promise<void> => {
      const text = await res.text();
      assert.equal(res.status, status, text);
      const e = JSON.parse(text).error;
      assert.equal(e.param, param);
      assert.match(e.message, message);
    };
    const file = (data: Uint8Array, name = "a.wav"): { data: Uint8Array; name: string; type: string } => ({ data, name, type: "application/octet-stream" });

    it("no file is a 400 naming 'file'", async () => {
      await expectError(await postForm(url, { model: "local/stt" }), 400, "file", /Missing required parameter: 'file'/);
      await expectError(await postForm(url, { audio: file(wav), model: "local/stt" }), 400, "file", /Missing required parameter: 'file'/);
    });

    it("an empty file is a 400", async () => {
      await expectError(await postForm(url, { file: file(new Uint8Array(0)), model: "local/stt" }), 400, "file", /empty/);
    });

    it("corrupt or unsupported audio is a 400 naming the problem", async () => {
      const corruptWav = Buffer.concat([Buffer.from("RIFF\xff\xff\xff\xffWAVE", "latin1"), Buffer.alloc(2000, 7)]);
      await expectError(await postForm(url, { file: file(corruptWav), model: "local/stt" }), 400, "file", /WAV/);
      const corruptMp3 = Buffer.concat([Buffer.from("ID3\x04\0\0\0\0\0\0", "latin1"), Buffer.alloc(4000, 0x55)]);
      await expectError(await postForm(url, { file: file(corruptMp3, "a.mp3"), model: "local/stt" }), 400, "file", /MP3/);
      const text = Buffer.from("this is a text file, not audio\n".repeat(100));
      await expectError(await postForm(url, { file: file(text, "notes.txt"), model: "local/stt" }), 400, "file", /Unsupported or (corrupt|unrecognized) audio/);
    });

    it("a JSON body is a 415, a missing model or bad stream flag a 400", async () => {
      await expectError(await postJson(url, { model: "local/stt" }), 415, null, /multipart\/form-data/);
      await expectError(await postForm(url, { file: file(wav) }), 400, "model", /Missing required parameter: 'model'/);
      await expectError(await postForm(url, { file: file(wav), model: "local/stt", stream: "maybe" }), 400, "stream", /true or false/);
    });

    it("an unsupported language is a 400, a text model a 400", async () => {
      await expectError(await postForm(url, { file: file(wav), model: "local/stt", language: "fr" }), 400, "language", /English only/);
      await expectError(await postForm(url, { file: file(wav), model: "local/echo" }), 400, "model", /does not support transcription/);
    });
  });
});

describe("upload limit", () => {
  let gw: TestGateway;
  const LIMIT = 100_000;
  before(async () => {
    gw = await startTestGateway({ grpc: { enabled: false }, http: { maxUploadBytes: LIMIT } });
  });
  after(() => gw.close());

  /**
   * Sends a request head, then body bytes 16 KiB at a time until the server
   * answers (or, with `finish`, the whole declared body); resolves when the
   * server closes the connection or, `waitMs` after the sending stopped,
   * when it has not.
   */
  function upload(
    head: string,
    declared: number,
    chunked: boolean,
    { finish = false, waitMs = 5000 }: { finish?: boolean; waitMs?: number } = {},
  ): Promise<{ response: string; sent: number; closedByServer: boolean; error: string | undefined }> {
    return new Promise((resolve, reject) => {
      const sock = connect(gw.gateway.httpPort, "127.0.0.1");
      let response = "";
      let sent = 0;
      let error: string | undefined;
      let gaveUp = false;
      const piece = Buffer.alloc(16 * 1024, 0x61);
      const stopped = (): void => {
        setTimeout(() => {
          gaveUp = true;
          sock.destroy();
        }, waitMs).unref();
      };
      const pump = (): void => {
        if (sock.destroyed) return;
        if (response && !finish) return stopped();
        if (sent >= declared) {
          // A chunked body ends with its last-chunk marker.
          if (chunked) sock.write("0\r\n\r\n");
          return stopped();
        }
        const n = Math.min(piece.length, declared - sent);
        const data = chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), Buffer.from("\r\n")]) : piece.subarray(0, n);
        sent += n;
        if (sock.write(data)) setImmediate(pump);
        else sock.once("drain", pump);
      };
      sock.on("connect", () => {
        sock.write(head);
        pump();
      });
      sock.on("data", (d) => {
        response += d.toString("latin1");
      });
      sock.on("error", (e) => {
        error = e.message;
      });
      sock.on("close", () => {
        if (!response) reject(new Error(`closed without an answer (${error ?? "no error"})`));
        else resolve({ response, sent, closedByServer: !gaveUp, error });
      });
    });
  }

  it("refuses a declared over-limit upload with 413 at once, without reading the body, then drains the declared rest without a reset", async () => {
    const size = 5_000_000;
    const head = `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: ${size}\r\n\r\n`;
    const early = await upload(head, size, false, { waitMs: 200 });
    assert.match(early.response, /^HTTP\/1\.1 413 /);
    assert.match(early.response, /larger than the limit of 100000 bytes/);
    assert.match(early.response, /connection: close/i);
    assert.ok(early.sent < size / 4, `only ${early.sent} of ${size} bytes were sent before the answer`);
    // A client that keeps sending after the answer is read to its end, not reset (lingering close).
    const full = await upload(head, size, false, { finish: true, waitMs: 200 });
    assert.match(full.response, /^HTTP\/1\.1 413 /);
    assert.equal(full.sent, size);
    assert.equal(full.error, undefined);
  });

  it("answers a declared upload whose rest is past the lingering bound (64 MiB) with 413 and closes the connection at once", async () => {
    const size = 200 * 1024 * 1024;
    const head = `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: ${size}\r\n\r\n`;
    const r = await upload(head, size, false, { finish: true, waitMs: 5000 });
    assert.match(r.response, /^HTTP\/1\.1 413 /);
    assert.ok(r.closedByServer, "the server closed the connection");
    assert.ok(r.sent < 64 * 1024 * 1024, `${r.sent} bytes were sent: the body was read past the bound`);
  });

  it("answers an undeclared (chunked) upload over the limit with 413 after draining it (lingering close)", async () => {
    // uWS drops a connection whose chunked body outlives its response, which
    // would lose the answer: the rest is read and dropped (bounded), then answered.
    const size = 5_000_000;
    const head = `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const r = await upload(head, size, true, { waitMs: 200 });
    assert.match(r.response, /^HTTP\/1\.1 413 /);
    assert.match(r.response, /connection: close/i);
  });
});
