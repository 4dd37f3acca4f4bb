/**
 * An upstream (or a proxy in front of it) whose error body is huge or never
 * ends: the gateway reads at most 64 KiB of it, answers the client with the
 * mapped error at once, keeps a short message, and closes the upstream
 * request — for every HTTP provider type, streamed and whole, on each of the
 * three upstream readers (undici's dispatcher for streams, for whole
 * answers, and `request()`). And a 2xx whole answer that never ends is
 * read to 64 MiB at most, then a 502: memory stays bounded.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

/** A fake upstream whose every answer has `status` and a body that starts with `head` and then never ends. */
interface EndlessServer {
  readonly baseUrl: string;
  /** Answers the client closed before they ended (all of them: none ends). */
  closedEarly(): number;
  requests(): number;
  close(): Promise<void>;
}

/**
 * Starts an {@link EndlessServer}: after `head`, 16 KiB of padding every 2 ms
 * (`paced`), or 256 KiB pieces as fast as the reader takes them.
 */
async function startEndlessServer(status: number, contentType: string, head: string, paced: boolean): Promise<EndlessServer> {
  let requests = 0;
  let closedEarly = 0;
  const open = new Set<ServerResponse>();
  const pad = Buffer.alloc(paced ? 16 * 1024 : 256 * 1024, paced ? "x" : "a");
  const server: Server = createServer((req, res) => {
    requests++;
    req.resume();
    open.add(res);
    res.writeHead(status, { "content-type": contentType });
    res.write(head);
    const pump = (): void => {
      while (!res.destroyed && res.write(pad));
      if (!res.destroyed) res.once("drain", pump);
    };
    const timer = paced ? setInterval(() => res.write(pad), 2) : undefined;
    if (!paced) pump();
    res.on("close", () => {
      clearInterval(timer);
      open.delete(res);
      if (!res.writableEnded) closedEarly++;
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    closedEarly: () => closedEarly,
    requests: () => requests,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const MODELS: ReadonlyArray<readonly [string, string]> = [
  ["openai", "oa/gpt-fake"],
  ["anthropic", "an/claude-fake-1"],
  ["gemini", "ge/gemini-fake-1"],
  ["bedrock", "br/anthropic.claude-3-5-sonnet-20240620-v1:0"],
];

/** Every HTTP provider type the tests name (`MODELS`, plus Deepgram and ElevenLabs), pointed at one server. */
function providersAt(baseUrl: string, o: { bedrockStream?: boolean } = {}): Record<string, Record<string, unknown>> {
  return {
    oa: { type: "openai", baseUrl: `${baseUrl}/v1`, apiKey: "k" },
    an: { type: "anthropic", baseUrl, apiKey: "k" },
    ge: { type: "gemini", baseUrl, apiKey: "k" },
    br: { type: "bedrock", region: "us-east-1", baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", ...(o.bedrockStream === false ? { stream: false } : {}) },
    dg: { type: "deepgram", baseUrl, apiKey: "k" },
    el: { type: "elevenlabs", baseUrl, apiKey: "k" },
  };
}

describe("an upstream error body that never ends", () => {
  let up: EndlessServer;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startEndlessServer(500, "text/plain", "upstream proxy error: the backend is gone ", true);
    gw = await startTestGateway({ routing: { maxAttempts: 1, breakerThreshold: 1000 }, providers: providersAt(up.baseUrl) });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, timeout: 10_000 });
  });

  after(async () => {
    await gw.close();
    await up.close();
  });

  for (const [type, model] of MODELS) {
    for (const stream of [true, false]) {
      it(`${type}, ${stream ? "streamed" : "whole"}: a 502 at once with a short message, the upstream request closed`, async () => {
        const closedBefore = up.closedEarly();
        const requestsBefore = up.requests();
        const err = await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }], stream }).then(
          () => assert.fail("expected an error"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 502);
        assert.match(err.message, /upstream proxy error: the backend is gone/);
        assert.ok(err.message.length < 3000, `message of ${err.message.length} chars`);
        assert.equal(up.requests() - requestsBefore, 1);
        // The gateway stopped reading: the upstream sees its response closed before it ended.
        const deadline = Date.now() + 5000;
        while (up.closedEarly() === closedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(up.closedEarly() - closedBefore, 1, "the upstream request was closed");
      });
    }
  }

  for (const model of ["oa/tts-1", "el/eleven_flash_v2_5"]) {
    it(`speech, ${model} (request() reader): the same 502`, async () => {
      const res = await fetch(`${gw.baseUrl}/audio/speech`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, input: "hi", voice: "alloy" }),
        signal: AbortSignal.timeout(10_000),
      });
      const j = (await res.json()) as { error: { message: string } };
      assert.equal(res.status, 502);
      assert.match(j.error.message, /upstream proxy error/);
      assert.ok(j.error.message.length < 3000);
    });
  }

  it("transcription, deepgram/nova-3 (request() reader): the same 502", async () => {
    const form = new FormData();
    form.append("model", "dg/nova-3");
    form.append("file", new Blob([new Uint8Array(3200)], { type: "audio/wav" }), "a.wav");
    const res = await fetch(`${gw.baseUrl}/audio/transcriptions`, { method: "POST", body: form, signal: AbortSignal.timeout(10_000) });
    const j = (await res.json()) as { error: { message: string } };
    assert.equal(res.status, 502, JSON.stringify(j));
    assert.match(j.error.message, /upstream proxy error/);
    assert.ok(j.error.message.length < 3000);
  });
});

describe("a whole (non-streamed) upstream answer that never ends", () => {
  let up: EndlessServer;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startEndlessServer(200, "application/json", '{"id":"x","text":"', false);
    // Bedrock's non-streamed path is its `stream: false` setting (/converse).
    gw = await startTestGateway({ routing: { maxAttempts: 1, breakerThreshold: 1000 }, providers: providersAt(up.baseUrl, { bedrockStream: false }) });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await gw.close();
    await up.close();
  });

  for (const [type, model] of MODELS) {
    it(`${type}: a 502 past 64 MiB, the upstream request closed`, async () => {
      const closedBefore = up.closedEarly();
      const err = await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }).then(
        () => assert.fail("expected an error"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 502);
      assert.match(err.message, /larger than 64 MiB/);
      const deadline = Date.now() + 5000;
      while (up.closedEarly() === closedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(up.closedEarly() - closedBefore, 1, "the upstream request was closed");
    });
  }
});
