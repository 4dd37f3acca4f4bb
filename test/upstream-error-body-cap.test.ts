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

/** A server that answers every request with a 500 whose body starts with a message and then never ends. */
async function startEndlessErrorServer(): Promise<{ baseUrl: string; closedEarly: () => number; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  let closedEarly = 0;
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    requests++;
    req.resume();
    open.add(res);
    res.writeHead(500, { "content-type": "text/plain" });
    res.write("upstream proxy error: the backend is gone ");
    const pad = Buffer.alloc(16 * 1024, "x");
    const timer = setInterval(() => res.write(pad), 2);
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

describe("an upstream error body that never ends", () => {
  let up: Awaited<ReturnType<typeof startEndlessErrorServer>>;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startEndlessErrorServer();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        oa: { type: "openai", baseUrl: `${up.baseUrl}/v1`, apiKey: "k" },
        an: { type: "anthropic", baseUrl: up.baseUrl, apiKey: "k" },
        ge: { type: "gemini", baseUrl: up.baseUrl, apiKey: "k" },
        br: { type: "bedrock", region: "us-east-1", baseUrl: up.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" },
        dg: { type: "deepgram", baseUrl: up.baseUrl, apiKey: "k" },
        el: { type: "elevenlabs", baseUrl: up.baseUrl, apiKey: "k" },
      },
    });
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

/** A server that answers every request with a 200 JSON body that never ends, written as fast as the reader takes it. */
async function startEndlessAnswerServer(): Promise<{ baseUrl: string; closedEarly: () => number; close(): Promise<void> }> {
  let closedEarly = 0;
  const open = new Set<ServerResponse>();
  const chunk = Buffer.alloc(256 * 1024, "a");
  const server: Server = createServer((req, res) => {
    req.resume();
    open.add(res);
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"id":"x","text":"');
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once("drain", pump);
    };
    pump();
    res.on("close", () => {
      open.delete(res);
      if (!res.writableEnded) closedEarly++;
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    closedEarly: () => closedEarly,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("a whole (non-streamed) upstream answer that never ends", () => {
  let up: Awaited<ReturnType<typeof startEndlessAnswerServer>>;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startEndlessAnswerServer();
    gw = await startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        oa: { type: "openai", baseUrl: `${up.baseUrl}/v1`, apiKey: "k" },
        an: { type: "anthropic", baseUrl: up.baseUrl, apiKey: "k" },
        ge: { type: "gemini", baseUrl: up.baseUrl, apiKey: "k" },
        br: { type: "bedrock", region: "us-east-1", baseUrl: up.baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret", stream: false },
      },
    });
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
