/**
 * Spoken conversations over the realtime door with the local engines
 * (espeak-ng speech in, pocketsphinx transcription, local/echo, espeak-ng
 * speech out): a scripted turn from a WAV streamed in 20 ms frames, barge-in,
 * and the official `openai` SDK's realtime client over TLS. pocketsphinx is
 * weak on synthetic speech, so transcripts are asserted loosely (non-empty).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as https from "node:https";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { appendAudio, audioOf, RealtimeTestClient, realtimeUrl, silence, speak, wav, wavData } from "./helpers/realtime.js";
import { openApi } from "./helpers/openapi.js";
import { makeSelfSignedCert } from "./helpers/realtime-tls.js";

const execFileAsync = promisify(execFile);
let tg: TestGateway;
let dir: string;
let utterance: Buffer;

before(async () => {
  tg = await startTestGateway();
  dir = mkdtempSync(join(tmpdir(), "spillway-rt-"));
  // The spoken WAV of the scripted conversation, made with the local TTS.
  const file = join(dir, "hello.wav");
  writeFileSync(file, wav(await speak(tg.gateway, "Hello there. What is the weather like today?")));
  utterance = wavData(readFileSync(file));
});
after(async () => {
  await tg.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("realtime voice (local engines)", () => {
  it("a scripted spoken turn: speech_started, speech_stopped, transcription, text and audio deltas, response.done", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await c.next("session.created");
    appendAudio(c, Buffer.concat([silence(400), utterance, silence(900)]));
    const started = await c.next("input_audio_buffer.speech_started");
    const stopped = await c.next("input_audio_buffer.speech_stopped");
    assert.equal(stopped.item_id, started.item_id);
    assert.ok(stopped.audio_end_ms > started.audio_start_ms);
    const committed = await c.next("input_audio_buffer.committed");
    assert.equal(committed.item_id, started.item_id);
    const transcribed = await c.next("conversation.item.input_audio_transcription.completed");
    assert.equal(transcribed.item_id, started.item_id);
    assert.ok(transcribed.transcript.length > 0, "non-empty transcript");
    const final = await c.next("conversation.item.done", (e) => e.item.id === started.item_id);
    assert.equal(final.item.content[0].transcript, transcribed.transcript);
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    const text = c.all("response.output_audio_transcript.delta").map((e) => e.delta).join("");
    assert.ok(text.length > 0, "text deltas");
    assert.ok(audioOf(c, done.response.id).length > 0, "audio deltas");
    // Every audio delta names the reply's message part and has its own event id (the deltas share one serialized prefix).
    const message = done.response.output.find((o: { type: string }) => o.type === "message");
    const audio = c.all("response.output_audio.delta");
    for (const e of audio) {
      assert.deepEqual(Object.keys(e), ["type", "response_id", "item_id", "output_index", "content_index", "delta", "event_id"]);
      assert.deepEqual([e.response_id, e.item_id, e.output_index, e.content_index], [done.response.id, message.id, done.response.output.indexOf(message), 0]);
    }
    assert.equal(new Set(audio.map((e) => e.event_id)).size, audio.length);
    const t = c.types();
    const order = [
      "input_audio_buffer.speech_started",
      "input_audio_buffer.speech_stopped",
      "input_audio_buffer.committed",
      "conversation.item.input_audio_transcription.completed",
      "response.created",
      "response.output_audio_transcript.delta",
      "response.output_audio.delta",
      "response.done",
    ].map((x) => t.indexOf(x));
    assert.deepEqual([...order].sort((a, b) => a - b), order, t.join(","));
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("barge-in: speech during a response cancels it (turn_detected), and none of its audio follows its response.done", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await c.next("session.created");
    const long = Array.from({ length: 30 }, (_, i) => `This is sentence number ${i + 1} of a long reply.`).join(" ");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: long }] } });
    c.send({ type: "response.create" });
    const first = await c.next("response.output_audio.delta");
    appendAudio(c, Buffer.concat([silence(200), utterance, silence(900)]));
    await c.next("input_audio_buffer.speech_started");
    const cancelled = await c.next("response.done", (e) => e.response.id === first.response_id);
    assert.equal(cancelled.response.status, "cancelled");
    assert.equal(cancelled.response.status_details.reason, "turn_detected");
    // The new turn is answered in full.
    const next = await c.next("response.done", (e) => e.response.id !== first.response_id);
    assert.equal(next.response.status, "completed");
    const after = c.events.slice(c.events.indexOf(cancelled) + 1);
    assert.equal(after.filter((e) => e.response_id === first.response_id).length, 0, "nothing of the cancelled response after its response.done");
    assert.ok(audioOf(c, next.response.id).length > 0);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("turn detection settings", () => {
  it("create_response: false commits and transcribes the turn but waits for response.create; interrupt_response: false lets a response finish", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await c.next("session.created");
    c.send({
      type: "session.update",
      session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", create_response: false, interrupt_response: false } } } },
    });
    await c.next("session.updated");
    appendAudio(c, Buffer.concat([silence(300), utterance, silence(900)]));
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.all("response.created").length, 0);
    c.send({ type: "response.create" });
    const first = await c.next("response.output_audio.delta");
    // The echo model answers with what it heard.
    const done0 = await c.next("response.done");
    assert.equal(c.all("response.output_audio_transcript.done")[0]!.transcript, t.transcript);
    assert.equal(done0.response.id, first.response_id);
    // Speech during a response no longer interrupts it.
    const long = Array.from({ length: 30 }, (_, i) => `Sentence ${i + 1} goes on.`).join(" ");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: long }] } });
    c.send({ type: "response.create" });
    const running = await c.next("response.output_audio.delta", (e) => e.response_id !== first.response_id);
    appendAudio(c, Buffer.concat([silence(200), utterance, silence(900)]));
    await c.next("input_audio_buffer.speech_started", () => true, 20_000, c.events.indexOf(running));
    const done = await c.next("response.done", (e) => e.response.id === running.response_id);
    assert.equal(done.response.status, "completed");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("idle_timeout_ms", () => {
  it("after a response has played, silence for idle_timeout_ms commits a turn (timeout_triggered) and answers", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(tg.origin));
    await c.next("session.created");
    c.send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: { type: "server_vad", idle_timeout_ms: 5000 } } } } });
    await c.next("session.updated");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hi." }] } });
    c.send({ type: "response.create" });
    const first = await c.next("response.done");
    const t0 = Date.now();
    appendAudio(c, silence(1000));
    const fired = await c.next("input_audio_buffer.timeout_triggered", () => true, 15_000);
    assert.ok(Date.now() - t0 >= 4500, "not before idle_timeout_ms");
    assert.ok(fired.audio_end_ms >= fired.audio_start_ms);
    const committed = await c.next("input_audio_buffer.committed", (e) => e.item_id === fired.item_id);
    assert.equal(committed.item_id, fired.item_id);
    const next = await c.next("response.done", (e) => e.response.id !== first.response.id, 15_000);
    assert.equal(next.response.status, "completed");
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("transcription sessions", () => {
  it("?intent=transcription: speech in, transcription events out, no responses", async () => {
    const c = await RealtimeTestClient.connect(`${realtimeUrl(tg.origin).replace(/\?.*$/, "")}?intent=transcription`);
    const created = await c.next("session.created");
    assert.equal(created.session.type, "transcription");
    c.send({
      type: "session.update",
      session: { type: "transcription", audio: { input: { transcription: { model: "local/stt", language: "en" }, turn_detection: { type: "server_vad", silence_duration_ms: 400 } } } },
    });
    const updated = await c.next("session.updated");
    assert.deepEqual(updated.session.audio.input.transcription, { model: "local/stt", language: "en" });
    appendAudio(c, Buffer.concat([silence(300), utterance, silence(900)]));
    await c.next("input_audio_buffer.speech_stopped");
    const t = await c.next("conversation.item.input_audio_transcription.completed");
    assert.ok(t.transcript.length > 0);
    assert.ok(c.all("conversation.item.input_audio_transcription.delta").length > 0);
    c.send({ type: "response.create", event_id: "no" });
    const err = await c.next("error");
    assert.equal(err.error.event_id, "no");
    assert.equal(c.all("response.created").length, 0);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });
});

describe("clients/voice-client.ts", () => {
  it("streams a WAV, prints the transcripts and writes the spoken reply to a WAV", async () => {
    const out = join(dir, "reply.wav");
    // Asynchronous: the gateway under test runs in this process.
    const { stdout: printed } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", "clients/voice-client.ts", "--url", realtimeUrl(tg.origin).replace(/\?.*$/, ""), "--fast", "--out", out, join(dir, "hello.wav")],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.match(printed, /you: \S/);
    assert.match(printed, /\[response completed\]/);
    const reply = wavData(readFileSync(out));
    assert.ok(reply.length > 24_000, `reply bytes ${reply.length}`);
  });
});

describe("realtime over TLS with the official openai SDK", () => {
  it("OpenAIRealtimeWS connects by base URL, updates the session, streams audio, gets transcription, text, audio and response.done", async () => {
    const cert = makeSelfSignedCert(dir);
    const tls = await startTestGateway({ http: { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } });
    try {
      const base = `https://127.0.0.1:${tls.gateway.httpPort}/v1`;
      const ca = readFileSync(cert.certFile);
      const client = new OpenAI({ apiKey: "sk-local", baseURL: base });
      const rt = new OpenAIRealtimeWS({ model: "local/realtime", options: { ca } }, client);
      const seen: Array<Record<string, any>> = [];
      const invalid: string[] = [];
      rt.on("event", (e) => {
        seen.push(e as Record<string, any>);
        const problems = openApi?.("RealtimeServerEvent", e) ?? [];
        if (problems.length > 0) invalid.push(`${e.type}: ${problems.join("; ")}`);
      });
      const errors: unknown[] = [];
      rt.on("error", (e) => errors.push(e));
      const wait = (type: string, match: (e: any) => boolean = () => true): Promise<any> =>
        new Promise((resolve) => {
          const found = seen.find((e) => e["type"] === type && match(e));
          if (found) return resolve(found);
          const on = (e: any): void => {
            if (e.type === type && match(e)) {
              rt.off("event", on);
              resolve(e);
            }
          };
          rt.on("event", on);
        });
      await wait("session.created");
      rt.send({
        type: "session.update",
        session: {
          type: "realtime",
          instructions: "Repeat after me.",
          audio: {
            input: { format: { type: "audio/pcm", rate: 24000 }, turn_detection: { type: "server_vad", silence_duration_ms: 400 } },
            output: { format: { type: "audio/pcm", rate: 24000 }, voice: "alloy" },
          },
        },
      });
      const updated = await wait("session.updated");
      assert.equal(updated.session.instructions, "Repeat after me.");
      const pcm = Buffer.concat([silence(300), utterance, silence(800)]);
      for (let i = 0; i < pcm.length; i += 960) rt.send({ type: "input_audio_buffer.append", audio: pcm.subarray(i, i + 960).toString("base64") });
      const transcribed = await wait("conversation.item.input_audio_transcription.completed");
      assert.ok(transcribed.transcript.length > 0);
      const done = await wait("response.done");
      assert.equal(done.response.status, "completed");
      assert.ok(seen.some((e) => e["type"] === "response.output_audio_transcript.delta"));
      assert.ok(seen.some((e) => e["type"] === "response.output_audio.delta"));
      // A text turn: output_text deltas.
      rt.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Text please." }] } });
      rt.send({ type: "response.create", response: { output_modalities: ["text"] } });
      await wait("response.done", (e) => e.response.id !== done.response.id);
      assert.equal(seen.filter((e) => e["type"] === "response.output_text.delta").map((e) => e["delta"]).join(""), "Text please.");
      assert.deepEqual(errors, []);
      assert.deepEqual(invalid, [], "every event validates against RealtimeServerEvent");
      rt.close();
      // The HTTP routes are served over TLS by the same app.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        https.get(`${base}/models`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on("error", reject);
      });
      assert.equal(status, 200);
    } finally {
      await tls.close();
    }
  });
});
