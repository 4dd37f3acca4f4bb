/**
 * The whole-answer reader (`postJsonWhole`, undici's dispatcher with a raw
 * handler) against the reader it replaced for non-streamed chats (`postJson`
 * + `upstreamJson`, undici's `request` and its Readable): for odd upstream
 * bodies — extra fields, unicode escapes, raw multi-byte characters split
 * across reads, a byte order mark, tool calls, refusals, logprobs, no usage,
 * error bodies and statuses — both must yield the same JSON, the same
 * payloads and the same errors. Then, through the gateway: a client that
 * leaves a non-streamed chat aborts the upstream request, and the answer the
 * openai SDK gets carries the upstream's tool calls, refusal and usage.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { wholeCompletionPayloads } from "../src/providers/openai/chat-whole.js";
import { postJson, upstreamJson } from "../src/providers/shared/upstream-http.js";
import { postJsonWhole } from "../src/providers/shared/upstream-whole.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { startRecordingServer, type RecordingServer } from "./helpers/recording-server.js";
import { postJson as clientPost } from "./helpers/sse.js";

interface Answer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  /** The body, written in these pieces (split anywhere, even inside a character). */
  readonly pieces: Array<string | Buffer>;
}

const message = (m: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ id: "chatcmpl-x", object: "chat.completion", created: 7, model: "gpt-up", choices: [{ index: 0, message: { role: "assistant", ...m }, finish_reason: "stop", ...extra }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });

const euro = Buffer.from('{"choices":[{"index":0,"message":{"role":"assistant","content":"a€b😀c"},"finish_reason":"length"}]}', "utf8");
const cut = euro.indexOf(Buffer.from("€")) + 1; // inside the 3-byte euro sign
const cut2 = euro.indexOf(Buffer.from("😀")) + 2; // inside the 4-byte emoji

/** Each case: the upstream's answer. */
const CASES: Record<string, Answer> = {
  plain: { pieces: [message({ content: "hello", refusal: null })] },
  "extra fields everywhere": {
    pieces: [
      JSON.stringify({
        id: "x",
        object: "chat.completion",
        created: 1,
        model: "m",
        system_fingerprint: "fp_1",
        service_tier: "default",
        choices: [{ index: 0, message: { role: "assistant", content: "hi", annotations: [], audio: null, extra: { a: 1 } }, finish_reason: "stop", extra: true }],
        usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, prompt_tokens_details: { cached_tokens: 1 }, completion_tokens_details: { reasoning_tokens: 1 } },
        unknown_top: [1, 2, 3],
      }),
    ],
  },
  "unicode escapes": { pieces: ['{"choices":[{"index":0,"message":{"role":"assistant","content":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\n"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'] },
  "multi-byte characters split across reads": { pieces: [euro.subarray(0, cut), euro.subarray(cut, cut2), euro.subarray(cut2)] },
  "a byte order mark": { pieces: [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(message({ content: "bom" }))])] },
  "tool calls": {
    pieces: [
      message(
        { content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }, { id: "call_2", type: "function", function: { name: "t2", arguments: "{}" } }] },
        { finish_reason: "tool_calls" },
      ),
    ],
  },
  refusal: { pieces: [message({ content: null, refusal: "I can't help with that." })] },
  logprobs: { pieces: [message({ content: "yes" }, { logprobs: { content: [{ token: "yes", logprob: -0.1, bytes: [121, 101, 115], top_logprobs: [] }] } })] },
  "reasoning content": { pieces: [message({ content: "42", reasoning_content: "think" })] },
  "no usage": { pieces: ['{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}'] },
  "legacy-style many pieces": { pieces: Array.from(message({ content: "p".repeat(3000) })).reduce<string[]>((a, ch, i) => (i % 97 === 0 ? [...a, ch] : (a[a.length - 1] += ch, a)), []) },
  "no choice (a 502)": { pieces: ['{"object":"chat.completion","choices":[]}'] },
  "not JSON (a 502)": { pieces: ["<html>oops</html>"] },
  "empty body (a 502)": { pieces: [] },
  "400 with an OpenAI error": { status: 400, pieces: [JSON.stringify({ error: { message: "bad 'temperature'", type: "invalid_request_error", param: "temperature", code: "invalid_value" } })] },
  "429 with Retry-After": { status: 429, headers: { "retry-after": "3" }, pieces: [JSON.stringify({ error: { message: "slow down", type: "rate_limit", code: "rate_limit_exceeded" } })] },
  "500 with a text body": { status: 500, pieces: ["upstream exploded"] },
  "503 without a body": { status: 503, pieces: [] },
};

function answer(res: ServerResponse, a: Answer): void {
  res.writeHead(a.status ?? 200, { "content-type": "application/json", ...a.headers });
  let i = 0;
  const next = (): void => {
    if (i >= a.pieces.length) {
      res.end();
      return;
    }
    res.write(a.pieces[i++]!);
    setTimeout(next, 2);
  };
  next();
}

/** Everything an error says that a client or the engine reads. */
function errorFields(e: unknown): Record<string, unknown> {
  assert.ok(e instanceof SpillwayError, `expected a SpillwayError, got ${String(e)}`);
  return { code: e.code, message: e.message, httpStatus: e.httpStatus, reason: e.reason, param: e.param, retryable: e.retryable, retryAfterMs: e.retryAfterMs, fromUpstream: e.fromUpstream };
}

type Outcome = { ok: true; json: unknown; payloads: unknown } | { ok: false; error: Record<string, unknown> };

async function settle(read: () => Promise<unknown>): Promise<Outcome> {
  try {
    const json = await read();
    let payloads: unknown;
    try {
      payloads = wholeCompletionPayloads(json, "p", false);
    } catch (e) {
      return { ok: false, error: errorFields(e) };
    }
    return { ok: true, json, payloads };
  } catch (e) {
    return { ok: false, error: errorFields(e) };
  }
}

describe("whole-answer reader (postJsonWhole) = the Readable reader it replaced", () => {
  let up: RecordingServer;
  before(async () => {
    up = await startRecordingServer((rec, res) => {
      const name = decodeURIComponent(rec.url.slice(1));
      if (name === "slow") return; // never answers: for the abort test
      answer(res, CASES[name]!);
    });
  });
  after(async () => {
    await up.close();
  });

  for (const name of Object.keys(CASES)) {
    it(`same JSON, payloads and errors: ${name}`, async () => {
      const url = `http://127.0.0.1:${up.port}/${encodeURIComponent(name)}`;
      const body = { model: "m", messages: [{ role: "user", content: "é" }] };
      const headers = { authorization: "Bearer k", "x-request-id": "r1" };
      const before = await settle(async () => upstreamJson("p", await postJson("p", url, body, { ...headers }, new AbortController().signal)));
      const afterRes = await settle(async () => upstreamJson("p", await postJsonWhole("p", url, JSON.stringify(body), { ...headers }, new AbortController().signal)));
      assert.deepEqual(afterRes, before);
      // The same request on the wire: body and the headers the upstream reads.
      const [a, b] = up.requests.slice(-2);
      assert.deepEqual(b!.body, a!.body);
      for (const h of ["content-type", "authorization", "x-request-id", "content-length"]) assert.equal(b!.headers[h], a!.headers[h], h);
      assert.equal(b!.method, "POST");
    });
  }

  it("an abort of the call's signal aborts the upstream request and rejects with the reason", async () => {
    const ac = new AbortController();
    const aborted = up.nextAbort();
    const p = postJsonWhole("p", `http://127.0.0.1:${up.port}/slow`, "{}", {}, ac.signal);
    while (!up.requests.some((r) => r.url === "/slow" && r.abortedAt === undefined)) await new Promise((r) => setTimeout(r, 5));
    const reason = new SpillwayError(Code.Canceled, "the client closed the connection");
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    const rec = await aborted;
    assert.equal(rec.url, "/slow");
  });

  it("an already aborted signal sends nothing", async () => {
    const ac = new AbortController();
    const reason = new SpillwayError(Code.Canceled, "gone");
    ac.abort(reason);
    const n = up.requests.length;
    await assert.rejects(postJsonWhole("p", `http://127.0.0.1:${up.port}/plain`, "{}", {}, ac.signal), (e) => e === reason);
    assert.equal(up.requests.length, n);
  });

  it("an unreachable upstream is the same 502 as before", async () => {
    const url = "http://127.0.0.1:1/v1/chat/completions";
    const before = await settle(async () => upstreamJson("p", await postJson("p", url, {}, {}, new AbortController().signal)));
    const afterRes = await settle(async () => upstreamJson("p", await postJsonWhole("p", url, "{}", {}, new AbortController().signal)));
    assert.equal(afterRes.ok, false);
    assert.deepEqual(afterRes, before);
  });
});

describe("non-streamed chat through the gateway on the whole-answer reader", () => {
  let up: RecordingServer;
  let gw: TestGateway;
  let client: OpenAI;
  let next: Answer | "hang" = { pieces: [] };
  before(async () => {
    up = await startRecordingServer((_rec, res) => {
      if (next === "hang") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"choices":[');
        return;
      }
      answer(res, next);
    });
    gw = await startTestGateway({
      providers: { up: { type: "openai", baseUrl: `http://127.0.0.1:${up.port}/v1`, apiKey: "sk-up", timeoutMs: 5000 } },
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it("a client that leaves aborts the upstream request", async () => {
    next = "hang";
    const ac = new AbortController();
    const aborted = up.nextAbort();
    const p = clientPost(`${gw.baseUrl}/chat/completions`, { model: "up/gpt", messages: [{ role: "user", content: "x" }] }, { signal: ac.signal });
    while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await p.catch(() => undefined);
    const rec = await aborted;
    assert.notEqual(rec.body.stream, true, "a non-streamed request goes upstream non-streamed");
  });

  it("tool calls, usage and finish reach the SDK", async () => {
    next = CASES["tool calls"]!;
    const r = await client.chat.completions.create({ model: "up/gpt", messages: [{ role: "user", content: "w" }] });
    assert.equal(r.model, "gpt");
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    assert.deepEqual(
      r.choices[0]!.message.tool_calls!.map((c) => [c.id, c.type === "function" ? c.function.name : "", c.type === "function" ? c.function.arguments : ""]),
      [
        ["call_1", "get_weather", '{"city":"Paris"}'],
        ["call_2", "t2", "{}"],
      ],
    );
    assert.deepEqual([r.usage!.prompt_tokens, r.usage!.completion_tokens, r.usage!.total_tokens], [3, 4, 7]);
  });

  it("split multi-byte characters and a refusal come back whole", async () => {
    next = CASES["multi-byte characters split across reads"]!;
    const r = await client.chat.completions.create({ model: "up/gpt", messages: [{ role: "user", content: "w" }] });
    assert.equal(r.choices[0]!.message.content, "a€b😀c");
    assert.equal(r.choices[0]!.finish_reason, "length");
    next = CASES["refusal"]!;
    const r2 = await client.chat.completions.create({ model: "up/gpt", messages: [{ role: "user", content: "w" }] });
    assert.equal(r2.choices[0]!.message.content, "I can't help with that.");
  });

  it("an upstream 429 keeps its status, message and Retry-After", async () => {
    next = CASES["429 with Retry-After"]!;
    const res = await fetch(`${gw.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "up/gpt", messages: [{ role: "user", content: "w" }] }) });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "3");
    const j = (await res.json()) as { error: { message: string } };
    assert.match(j.error.message, /slow down/);
  });
});
