/**
 * Speech through the gRPC door with the local engines: Synthesize with
 * `local/tts` (espeak-ng) produces valid, audible 16-bit PCM, streamed; and
 * Transcribe with `local/stt` (pocketsphinx) is bidi, with transcript deltas
 * arriving while the client is still sending audio. Each test skips, saying
 * why, when its model is missing or unavailable (engine not installed).
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ServiceError } from "@grpc/grpc-js";
import { AudioEncoding, TranscriptDelta_Kind, type Chunk } from "../src/gen/spillway/v1/chunk.js";
import type { ModelInfo } from "../src/gen/spillway/v1/request.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { readAll, spillwayClient, synthesizeRequest, transcribeConfig } from "./helpers/grpc.js";

const RATE = 16_000;

/** The PCM bytes of a stream's audio chunks. */
const pcmOf = (chunks: Chunk[]): Buffer =>
  Buffer.concat(chunks.flatMap((c) => (c.payload?.$case === "audio" ? [Buffer.from(c.payload.value.data)] : [])));

describe("gRPC door with local speech engines", () => {
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  const missing = new Map<string, string>();

  /** Skips the test when `model` cannot run here; returns true when it skipped. */
  const skipUnless = (t: TestContext, model: string): boolean => {
    const why = missing.get(model);
    if (why !== undefined) t.skip(`${model} is not available here: ${why}`);
    return why !== undefined;
  };

  before(async () => {
    gw = await startTestGateway();
    client = spillwayClient(gw.grpcAddress!);
    const { models } = await new Promise<{ models: ModelInfo[] }>((resolve, reject) =>
      client.listModels({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    for (const id of ["local/tts", "local/stt"]) {
      const m = models.find((x) => x.id === id);
      if (!m) missing.set(id, "the local provider does not list it (not built yet?)");
      else if (!m.available) missing.set(id, m.unavailableReason || "reported unavailable");
    }
  });
  after(async () => {
    client.close();
    await gw.close();
  });

  it("Synthesize streams valid, audible 16-bit PCM at the requested rate, usage then finish last", async (t) => {
    if (skipUnless(t, "local/tts")) return;
    const text = "Hello from Spillway. This sentence is spoken by the local speech engine.";
    const { chunks, error } = await readAll(client.synthesize(synthesizeRequest("local/tts", text, { sampleRate: RATE })));
    assert.equal(error, undefined);
    const audio = chunks.filter((c) => c.payload?.$case === "audio");
    assert.ok(audio.length >= 2, `speech arrives in pieces as it is made, got ${audio.length} chunk(s)`);
    for (const c of audio) {
      assert.ok(c.payload?.$case === "audio");
      assert.equal(c.payload.value.encoding, AudioEncoding.AUDIO_ENCODING_PCM_S16LE);
      assert.equal(c.payload.value.sampleRate, RATE);
    }
    assert.deepEqual(
      chunks.slice(audio.length).map((c) => c.payload?.$case),
      ["usage", "finish"],
    );
    assert.deepEqual(
      chunks.map((c) => c.seq),
      chunks.map((_, i) => i),
    );
    const pcm = pcmOf(chunks);
    assert.equal(pcm.length % 2, 0, "whole 16-bit samples");
    const seconds = pcm.length / 2 / RATE;
    assert.ok(seconds > 1 && seconds < 30, `a plausible duration for the sentence: ${seconds.toFixed(2)} s`);
    let peak = 0;
    let sumSq = 0;
    for (let i = 0; i < pcm.length; i += 2) {
      const s = pcm.readInt16LE(i);
      peak = Math.max(peak, Math.abs(s));
      sumSq += s * s;
    }
    const rms = Math.sqrt(sumSq / (pcm.length / 2));
    assert.ok(peak > 3_000 && rms > 200, `audible speech, not silence or noise floor (peak ${peak}, rms ${rms.toFixed(0)})`);
  });

  it("Transcribe is bidi: transcript deltas arrive before the client half-closes", async (t) => {
    if (skipUnless(t, "local/tts") || skipUnless(t, "local/stt")) return;
    const speech = await readAll(client.synthesize(synthesizeRequest("local/tts", "hello world. this is a test.", { sampleRate: RATE })));
    assert.equal(speech.error, undefined);
    // Speech, then a second of silence so the recognizer closes the utterance.
    const audio = Buffer.concat([pcmOf(speech.chunks), Buffer.alloc(RATE * 2)]);

    const call = client.transcribe();
    const before: Chunk[] = [];
    const after: Chunk[] = [];
    let halfClosed = false;
    const firstTranscript = new Promise<void>((resolve) =>
      call.on("data", (c: Chunk) => {
        (halfClosed ? after : before).push(c);
        if (c.payload?.$case === "transcript") resolve();
      }),
    );
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      call.on("error", resolve);
      call.on("end", () => resolve(undefined));
    });
    call.write({ input: { $case: "config", value: transcribeConfig("local/stt", RATE) } });
    const step = (RATE / 10) * 2; // 100 ms
    for (let at = 0; at < audio.length; at += step) {
      call.write({ input: { $case: "audio", value: audio.subarray(at, at + step) } });
      await sleep(5);
    }
    const timeout = sleep(20_000).then(() => "timeout" as const);
    const first = await Promise.race([firstTranscript.then(() => "delta" as const), timeout]);
    assert.equal(first, "delta", "no transcript chunk arrived while the call was still open for audio");
    halfClosed = true;
    call.end();
    assert.equal(await ended, undefined);

    const all = [...before, ...after];
    assert.ok(before.some((c) => c.payload?.$case === "transcript"), "deltas before the half-close");
    assert.deepEqual(
      all.slice(-2).map((c) => c.payload?.$case),
      ["usage", "finish"],
    );
    const text = all
      .flatMap((c) => (c.payload?.$case === "transcript" && c.payload.value.kind === TranscriptDelta_Kind.KIND_FINAL ? [c.payload.value.text] : []))
      .join(" ");
    assert.ok(text.trim().length > 0, "a final transcript");
    assert.deepEqual(
      all.map((c) => c.seq),
      all.map((_, i) => i),
    );
  });

  it("Transcribe counts audio as life: a live stream with a silence longer than the timeouts is served; a silent client is not", async (t) => {
    if (skipUnless(t, "local/tts") || skipUnless(t, "local/stt")) return;
    // Timeouts long enough for pocketsphinx to finish the utterance on a loaded machine, short against the silence.
    const strict = await startTestGateway({ limits: { timeoutMs: 1500, idleTimeoutMs: 1500 } });
    const c = spillwayClient(strict.grpcAddress!);
    try {
      const speech = await readAll(c.synthesize(synthesizeRequest("local/tts", "hello world. this is a test.", { sampleRate: RATE })));
      assert.equal(speech.error, undefined);
      const call = c.transcribe();
      const got: Chunk[] = [];
      call.on("data", (ch: Chunk) => got.push(ch));
      const ended = new Promise<ServiceError | undefined>((resolve) => {
        call.on("error", resolve);
        call.on("end", () => resolve(undefined));
      });
      call.write({ input: { $case: "config", value: transcribeConfig("local/stt", RATE) } });
      // 5 s of silence sent in real time (a microphone before anyone speaks): over three times the timeout.
      const tenth = (RATE / 10) * 2;
      for (let i = 0; i < 50; i++) {
        call.write({ input: { $case: "audio", value: Buffer.alloc(tenth) } });
        await sleep(100);
      }
      const rest = Buffer.concat([pcmOf(speech.chunks), Buffer.alloc(RATE * 2)]);
      for (let at = 0; at < rest.length; at += tenth) call.write({ input: { $case: "audio", value: rest.subarray(at, at + tenth) } });
      call.end();
      assert.equal(await ended, undefined, "the live stream was cut off during its silence");
      assert.ok(got.some((ch) => ch.payload?.$case === "transcript"), "a transcript");
      assert.equal(got.at(-1)?.payload?.$case, "finish");

      // A client that sends its config and then nothing is still timed out.
      const idle = c.transcribe();
      idle.on("data", () => undefined);
      const idleEnd = new Promise<ServiceError | undefined>((resolve) => {
        idle.on("error", resolve);
        idle.on("end", () => resolve(undefined));
      });
      idle.write({ input: { $case: "config", value: transcribeConfig("local/stt", RATE) } });
      const err = await idleEnd;
      assert.equal(err?.code, status.DEADLINE_EXCEEDED);
    } finally {
      c.close();
      await strict.close();
    }
  });

  it("Transcribe with local/stt: audio before config is INVALID_ARGUMENT naming config", async (t) => {
    if (skipUnless(t, "local/stt")) return;
    const call = client.transcribe();
    const result = readAll(call);
    call.write({ input: { $case: "audio", value: Buffer.alloc(3200) } });
    call.end();
    const { error } = await result;
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.match(error.details, /config/);
  });
});
