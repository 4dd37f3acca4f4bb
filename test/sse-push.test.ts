/**
 * SsePushStream, the upstream SSE hot path, over a real socket: a node:http
 * server on loopback, read through both bodies the push reader takes —
 * undici's `request()` and its Readable (Gemini, Bedrock, audio), and the raw
 * dispatcher body of `postJsonStream` (every streamed JSON POST: OpenAI chat
 * and Responses, Anthropic) — with the same contract: split events,
 * keep-alive reuse after the end marker, a body that goes on after it
 * closed, the socket paused while nobody pulls, `return()` closing the
 * request, failures after what came before.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from "undici";
import { SpillwayError } from "../src/engine/errors.js";
import { SsePushStream, type SseMapper } from "../src/providers/shared/sse-push.js";
import { postJsonStream } from "../src/providers/shared/upstream-stream.js";

type Handler = (res: ServerResponse) => void;

/** Items are the events' data; `[DONE]` ends; a body ending without it is a truncation. */
function mapper(): SseMapper<string> {
  return {
    onEvent: (ev, emit) => {
      if (ev.data === "[DONE]") return true;
      if (ev.data === "bad") throw new Error("malformed event");
      emit(ev.data);
      return false;
    },
    onBodyEnd: () => {
      throw new Error("truncated");
    },
    readError: (e) => new Error(`read failed: ${(e as Error).message}`),
  };
}

async function drain(s: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of s) out.push(x);
  return out;
}

for (const via of ["request", "dispatch"] as const) describe(`SsePushStream over undici (${via === "request" ? "request() and its Readable" : "postJsonStream's dispatcher body"})`, () => {
  let server: Server;
  let base: string;
  let handler: Handler = (res) => res.end();
  let connections = 0;
  const sockets = new Set<Socket>();
  const agent = new Agent({ connections: 1 });

  before(async () => {
    server = createServer((_req, res) => handler(res));
    server.on("connection", (s: Socket) => {
      connections++;
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await agent.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function open(maxEventBytes?: number, dispatcher: Dispatcher = agent): Promise<SsePushStream<string>> {
    if (via === "request") {
      const res = await request(`${base}/`, { dispatcher });
      return new SsePushStream(res.body, "up", mapper(), maxEventBytes);
    }
    // postJsonStream sends on the global dispatcher: this test's agent for the call.
    const was = getGlobalDispatcher();
    setGlobalDispatcher(dispatcher);
    try {
      const res = await postJsonStream("up", `${base}/`, "{}", {}, new AbortController().signal);
      return new SsePushStream(res.body, "up", mapper(), maxEventBytes);
    } finally {
      setGlobalDispatcher(was);
    }
  }

  it("parses events split anywhere, a multi-byte character across two reads included", async () => {
    const text = "data: héllo 👋\n\ndata: two\n\ndata: [DONE]\n\n";
    const bytes = Buffer.from(text);
    handler = (res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      // One byte per write, flushed apart, so the emoji's four bytes arrive in separate reads.
      let i = 0;
      const step = (): void => {
        if (i >= bytes.length) return void res.end();
        res.write(bytes.subarray(i, i + 1));
        i++;
        setImmediate(step);
      };
      step();
    };
    assert.deepEqual(await drain(await open()), ["héllo 👋", "two"]);
  });

  it("keeps the upstream connection when the body ends after [DONE], even in a later packet", async () => {
    const own = new Agent({ connections: 1 });
    try {
      for (const late of [false, true]) {
        // The body's end comes in the same write as [DONE], or 50 ms after it.
        handler = late
          ? (res) => {
              res.write("data: a\n\ndata: [DONE]\n\n");
              setTimeout(() => res.end(), 50);
            }
          : (res) => res.end("data: a\n\ndata: [DONE]\n\n");
        assert.deepEqual(await drain(await open(undefined, own)), ["a"]);
        await new Promise((r) => setTimeout(r, 100));
        const after1 = connections;
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(await drain(await open(undefined, own)), ["a"]);
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(connections, after1, `a stream after the first opened a new upstream connection (end ${late ? "late" : "with [DONE]"})`);
      }
    } finally {
      await own.close();
    }
  });

  it("closes the upstream request when the body goes on after [DONE]", async () => {
    let closed!: () => void;
    const wasClosed = new Promise<void>((r) => (closed = r));
    handler = (res) => {
      res.on("close", closed);
      res.write("data: a\n\ndata: [DONE]\n\n");
      // ...and never ends.
    };
    assert.deepEqual(await drain(await open()), ["a"]);
    await wasClosed;
  });

  it("pauses the upstream socket while the consumer does not pull, and loses nothing", async () => {
    const total = 5000;
    const pad = "x".repeat(2000);
    let refused = false;
    let written = 0;
    handler = (res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const pump = (): void => {
        while (written < total) {
          const ok = res.write(`data: ${written}-${pad}\n\n`);
          written++;
          if (!ok) {
            refused = true;
            res.once("drain", pump);
            return;
          }
        }
        res.end("data: [DONE]\n\n");
      };
      pump();
    };
    const s = await open();
    // Nobody pulls for a while: the socket must fill and the server must be refused.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(refused, "the server was never refused: the stream read without bound");
    assert.ok(written < total, `the server wrote all ${total} events while nobody read`);
    const got = await drain(s);
    assert.equal(got.length, total);
    assert.ok(got.every((x, i) => x.startsWith(`${i}-`)), "events out of order");
  });

  it("return() mid-stream destroys the body and closes the upstream request", async () => {
    let closed!: () => void;
    const wasClosed = new Promise<void>((r) => (closed = r));
    handler = (res) => {
      res.on("close", closed);
      res.write("data: a\n\ndata: b\n\n");
    };
    const s = await open();
    assert.deepEqual(await s.next(), { done: false, value: "a" });
    assert.deepEqual(await s.return(), { done: true, value: undefined });
    assert.deepEqual(await s.next(), { done: true, value: undefined });
    await wasClosed;
  });

  it("delivers what came before a failure, then the failure: truncation, bad event, reset, oversized event", async () => {
    handler = (res) => res.end("data: a\n\n");
    let s = await open();
    assert.deepEqual(await s.next(), { done: false, value: "a" });
    await assert.rejects(s.next(), /truncated/);
    assert.deepEqual(await s.next(), { done: true, value: undefined });

    handler = (res) => res.end("data: a\n\ndata: bad\n\ndata: c\n\n");
    s = await open();
    assert.deepEqual(await s.next(), { done: false, value: "a" });
    await assert.rejects(s.next(), /malformed event/);

    handler = (res) => {
      res.write("data: a\n\n");
      setTimeout(() => res.socket?.destroy(), 20);
    };
    s = await open();
    assert.deepEqual(await s.next(), { done: false, value: "a" });
    await assert.rejects(s.next(), /read failed/);

    // An event that never completes: it may not be buffered past the limit.
    handler = (res) => res.write(`data: ${"x".repeat(4096)}`);
    s = await open(1024);
    await assert.rejects(s.next(), (e: unknown) => e instanceof SpillwayError && /larger than 1024 bytes/.test(e.message));
  });
});
