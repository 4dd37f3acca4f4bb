/**
 * The cleanups of issue 13 on the provider side: one SSE reader for every
 * upstream stream (the OpenAI audio streams now count pings as life),
 * `KeyPool.refused` keeping every field of the error, and the benchmark's
 * phase events published on `node:diagnostics_channel` instead of the
 * engine and providers importing the observability probe.
 */
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { Phase, PHASE_CHANNEL } from "../src/engine/phase-channel.js";
import { KeyPool } from "../src/providers/shared/key-pool.js";
import { TracePhase, tracePhase } from "../src/observability/phase-trace.js";
import { startFakeOpenAi } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { parseSse } from "./helpers/sse.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A speech upstream whose SSE stream is scripted per test. */
interface SpeechFake {
  readonly baseUrl: string;
  script: (res: ServerResponse) => Promise<void>;
  close(): Promise<void>;
}

async function startSpeechFake(): Promise<SpeechFake> {
  const fake: SpeechFake = {
    baseUrl: "",
    script: async () => undefined,
    close: async () => undefined,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => void fake.script(res).catch(() => undefined));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return Object.assign(fake, {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

const delta = (audio: string): string => `data: ${JSON.stringify({ type: "speech.audio.delta", audio: Buffer.from(audio).toString("base64") })}\n\n`;
const done = `data: ${JSON.stringify({ type: "speech.audio.done", usage: { input_tokens: 2, output_tokens: 3, total_tokens: 5 } })}\n\n`;

describe("OpenAI audio streams read with the one SSE reader", () => {
  let fake: SpeechFake;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startSpeechFake();
    gw = await startTestGateway({
      grpc: { enabled: false },
      limits: { timeoutMs: 400, idleTimeoutMs: 400 },
      routing: { maxAttempts: 1 },
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["gpt-4o-mini-tts"] } },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it("SSE comments (pings) count as life: a second of pings before the audio is not a timeout", async () => {
    fake.script = async (res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < 10; i++) {
        res.write(": ping\n\n");
        await sleep(100);
      }
      res.write(delta("abc"));
      res.end(done);
    };
    const res = await client.audio.speech.create({ model: "openai/gpt-4o-mini-tts", input: "x", voice: "alloy", stream_format: "sse" });
    const events = parseSse(await res.text()).filter((e) => e.data !== "[DONE]").map((e) => JSON.parse(e.data));
    assert.equal(Buffer.from(events[0].audio, "base64").toString(), "abc");
    assert.deepEqual(events.at(-1), { type: "speech.audio.done", usage: { input_tokens: 2, output_tokens: 3, total_tokens: 5 } });
  });
  // Draining after the end event is SsePushStream's, tested in test/sse-push.test.ts.
});

describe("KeyPool.refused", () => {
  it("keeps every field of the error, retryAfterMs included, when it makes it retryable", () => {
    const pool = new KeyPool([
      { key: "a", name: "a", weight: 1 },
      { key: "b", name: "b", weight: 1 },
    ]);
    const err = new SpillwayError(Code.ResourceExhausted, "up: slow down", {
      httpStatus: 429,
      retryable: false,
      retryAfterMs: 1234,
      param: "model",
      reason: "rate_limit_exceeded",
      fromUpstream: true,
      cause: new Error("root"),
    });
    const out = pool.refused(pool.pick(() => 0)!, err);
    assert.ok(out instanceof SpillwayError);
    assert.equal(out.retryable, true);
    assert.equal(out.retryAfterMs, 1234);
    assert.equal(out.httpStatus, 429);
    assert.equal(out.param, "model");
    assert.equal(out.reason, "rate_limit_exceeded");
    assert.equal(out.message, "up: slow down");
    assert.equal(out.code, Code.ResourceExhausted);
    assert.equal(out.fromUpstream, true);
    assert.equal(out.cause, err, "the refusal is the cause");
    assert.equal(err.retryable, false, "the original is left as it was");
  });
});

describe("phase events on node:diagnostics_channel", () => {
  it("the engine and the provider publish their phases in order; tracePhase still publishes", async () => {
    const fake = await startFakeOpenAi();
    const gw = await startTestGateway({ grpc: { enabled: false }, providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "k", models: ["gpt-fake"] } } });
    const seen: number[] = [];
    const onPhase = (m: unknown): void => void seen.push(m as number);
    subscribe(PHASE_CHANNEL, onPhase);
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true });
      for await (const _ of stream) void _;
      const low = seen.filter((p) => p >= Phase.AttemptStarted && p <= Phase.UpstreamHeaders);
      assert.deepEqual(low, [Phase.AttemptStarted, Phase.ProviderOpened, Phase.UpstreamSent, Phase.UpstreamHeaders]);
      seen.length = 0;
      tracePhase(TracePhase.Validated);
      assert.deepEqual(seen, [Phase.Validated]);
    } finally {
      unsubscribe(PHASE_CHANNEL, onPhase);
      await gw.close();
      await fake.close();
    }
  });
});
