/**
 * The streamed-answer reader (`postJsonStream`: undici's dispatcher with a
 * raw handler feeding the SSE push reader, no Readable) against the reader it
 * replaced for streamed chats (`postJson` and its Readable body): for the
 * same upstream bytes — events split anywhere (inside a multi-byte
 * character, inside `data:`), the whole answer in one read, pings, tool
 * calls, a body reset in the middle, a truncation, an in-band error, error
 * statuses — both must yield the same payloads and the same errors. Also:
 * reads that arrive before the reader attaches are delivered in order, a
 * consumer that stops early closes the upstream request, an abort of the
 * call closes it too, and a burst past the high-water mark (a paused body) all arrives.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import type { ChunkPayload } from "../src/engine/payload.js";
import { openAiStreamPayloads } from "../src/providers/openai/chat-stream.js";
import { postJson } from "../src/providers/shared/upstream-http.js";
import { postJsonStream } from "../src/providers/shared/upstream-stream.js";
import { startRecordingServer, type RecordingServer } from "./helpers/recording-server.js";

const head = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":';
const ev = (delta: string, finish = "null"): string => `data: ${head}${delta},"finish_reason":${finish}}]}\n\n`;
const usage = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}\n\n';
const full = ev('{"role":"assistant","content":""}') + ev('{"content":"h€llo "}') + ev('{"content":"w😀rld"}') + ev("{}", '"stop"') + usage + "data: [DONE]\n\n";
const bytes = Buffer.from(full);
/** Cut points inside the euro sign, inside the emoji and inside a `data:` prefix. */
const cuts = [bytes.indexOf(Buffer.from("€")) + 1, bytes.indexOf(Buffer.from("😀")) + 2, bytes.indexOf(Buffer.from("data: "), 200) + 3];

interface Answer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly pieces: Array<string | Buffer>;
  /** Reset the connection after the pieces instead of ending the body. */
  readonly reset?: boolean;
}

const split = (b: Buffer, at: number[]): Buffer[] => {
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at].sort((x, y) => x - y)) {
    out.push(b.subarray(from, c));
    from = c;
  }
  out.push(b.subarray(from));
  return out;
};

const CASES: Record<string, Answer> = {
  "one event a read": { pieces: full.split(/(?<=\n\n)/) },
  "split inside characters and a data: prefix": { pieces: split(bytes, cuts) },
  "the whole answer in one read": { pieces: [full] },
  "pings and comments": { pieces: [": ping\n\n", ev('{"role":"assistant","content":"a"}'), ": keep-alive\n\n", ev("{}", '"stop"'), "data: [DONE]\n\n"] },
  "tool calls": {
    pieces: [
      ev('{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}'),
      ev('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]}'),
      ev('{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}'),
      ev("{}", '"tool_calls"'),
      "data: [DONE]\n\n",
    ],
  },
  "a reset in the middle": { pieces: [ev('{"role":"assistant","content":"a"}')], reset: true },
  "truncated (no [DONE], no finish)": { pieces: [ev('{"role":"assistant","content":"a"}')] },
  "an in-band error": { pieces: [ev('{"role":"assistant","content":"a"}'), 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'] },
  "a malformed event": { pieces: ["data: {not json\n\n"] },
  "401 with an OpenAI error": { status: 401, pieces: ['{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}'] },
  "429 with Retry-After": { status: 429, headers: { "retry-after": "2" }, pieces: ['{"error":{"message":"slow","code":"rate_limit_exceeded"}}'] },
  "502 with HTML": { status: 502, pieces: ["<html>bad gateway</html>"] },
};

function answer(res: ServerResponse, a: Answer): void {
  res.writeHead(a.status ?? 200, { "content-type": a.status ? "application/json" : "text/event-stream", ...a.headers });
  let i = 0;
  const next = (): void => {
    if (i >= a.pieces.length) {
      if (a.reset) res.socket?.destroy();
      else res.end();
      return;
    }
    res.write(a.pieces[i++]!);
    setTimeout(next, 3);
  };
  next();
}

function errorFields(e: unknown): Record<string, unknown> {
  assert.ok(e instanceof SpillwayError, `expected a SpillwayError, got ${String(e)}`);
  // A reset's own wording (undici's "other side closed" / "socket hang up") is kept; compare what clients read of it.
  return { code: e.code, httpStatus: e.httpStatus, reason: e.reason, param: e.param, retryable: e.retryable, retryAfterMs: e.retryAfterMs, message: e.message.replace(/\(.*\)$/, "(…)") };
}

async function drain(it: AsyncIterable<ChunkPayload>): Promise<{ items: ChunkPayload[]; error?: Record<string, unknown> }> {
  const items: ChunkPayload[] = [];
  try {
    for await (const p of it) items.push(p);
    return { items };
  } catch (e) {
    return { items, error: errorFields(e) };
  }
}

describe("streamed-answer reader (postJsonStream) = the Readable reader it replaced", () => {
  let up: RecordingServer;
  let hold: Array<() => void> = [];
  before(async () => {
    up = await startRecordingServer((rec, res) => {
      const name = decodeURIComponent(rec.url.slice(1));
      if (name === "endless") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const t = setInterval(() => res.write(ev('{"content":"x"}')), 2);
        res.on("close", () => clearInterval(t));
        return;
      }
      if (name === "burst") {
        // 400 events in a few writes, then the end: more than the push reader's high-water mark.
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(ev('{"role":"assistant","content":""}') + ev('{"content":"x"}').repeat(399));
        hold.push(() => res.end(ev("{}", '"stop"') + "data: [DONE]\n\n"));
        return;
      }
      answer(res, CASES[name]!);
    });
  });
  after(async () => {
    await up.close();
  });

  for (const name of Object.keys(CASES)) {
    it(`same payloads and errors: ${name}`, async () => {
      const url = `http://127.0.0.1:${up.port}/${encodeURIComponent(name)}`;
      const body = { model: "m", stream: true, messages: [{ role: "user", content: "é" }] };
      const run = async (which: "before" | "after"): Promise<unknown> => {
        const signal = new AbortController().signal;
        try {
          const it =
            which === "before"
              ? openAiStreamPayloads((await postJson("p", url, body, { authorization: "Bearer k" }, signal)).stream, "p", signal, false)
              : openAiStreamPayloads((await postJsonStream("p", url, JSON.stringify(body), { authorization: "Bearer k" }, signal)).body, "p", signal, false);
          return await drain(it);
        } catch (e) {
          return { opened: false, error: errorFields(e) };
        }
      };
      const a = await run("before");
      const b = await run("after");
      assert.deepEqual(b, a);
      const [ra, rb] = up.requests.slice(-2);
      assert.deepEqual(rb!.body, ra!.body);
      for (const h of ["content-type", "authorization", "content-length"]) assert.equal(rb!.headers[h], ra!.headers[h], h);
    });
  }

  it("reads that came before the reader attached are delivered, in order", async () => {
    const res = await postJsonStream("p", `http://127.0.0.1:${up.port}/${encodeURIComponent("the whole answer in one read")}`, "{}", {}, new AbortController().signal);
    // The whole body has arrived (and ended) before anything reads it.
    await new Promise((r) => setTimeout(r, 50));
    const { items, error } = await drain(openAiStreamPayloads(res.body, "p", new AbortController().signal, false));
    assert.equal(error, undefined);
    const text = items.flatMap((p) => (p.$case === "text" ? [p.value.text] : [])).join("");
    assert.equal(text, "h€llo w😀rld");
    assert.ok(items.some((p) => p.$case === "usage"));
  });

  it("a consumer that stops early closes the upstream request", async () => {
    const aborted = up.nextAbort();
    const res = await postJsonStream("p", `http://127.0.0.1:${up.port}/endless`, "{}", {}, new AbortController().signal);
    const it = openAiStreamPayloads(res.body, "p", new AbortController().signal, false);
    let n = 0;
    for await (const _ of it) if (++n === 5) break;
    const rec = await aborted;
    assert.equal(rec.url, "/endless");
  });

  it("an abort of the call closes the upstream request and ends the stream with the reason", async () => {
    const ac = new AbortController();
    const aborted = up.nextAbort();
    const res = await postJsonStream("p", `http://127.0.0.1:${up.port}/endless`, "{}", {}, ac.signal);
    const it = openAiStreamPayloads(res.body, "p", ac.signal, false)[Symbol.asyncIterator]();
    await it.next();
    const reason = new SpillwayError(Code.Canceled, "the client closed the connection");
    ac.abort(reason);
    await aborted;
    let err: unknown;
    try {
      for (;;) if ((await it.next()).done) break;
    } catch (e) {
      err = e;
    }
    assert.equal(err, reason);
  });

  it("backpressure: a burst past the push reader's high-water mark (it pauses the body) all arrives once read", async () => {
    hold = [];
    const res = await postJsonStream("p", `http://127.0.0.1:${up.port}/burst`, "{}", {}, new AbortController().signal);
    const it = openAiStreamPayloads(res.body, "p", new AbortController().signal, false)[Symbol.asyncIterator]();
    const first = await it.next();
    while (hold.length === 0) await new Promise((r) => setTimeout(r, 5));
    hold[0]!();
    let texts = !first.done && first.value.$case === "text" ? 1 : 0;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.$case === "text") texts++;
    }
    assert.equal(texts, 399);
  });
});
