/**
 * The bytes a chat answer goes out with (issue 16 wave 6 cut per-request work on this path: shared
 * `x-spillway-*` header lists, the body read as text, ids from pooled random bytes). The head's
 * headers, their order and the body are compared byte for byte with what the gateway sent before
 * those cuts (taken from main at d78be99 with the same requests), ids, `created` and `Date`
 * masked: one upstream key (the shared header list), several keys (`x-spillway-key` added after
 * it: the list copied), streamed and not.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { chatChunk, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

async function raw(origin: string, body: string): Promise<string> {
  const s = connect(Number(new URL(origin).port), "127.0.0.1");
  await new Promise((r) => s.once("connect", r));
  let out = "";
  s.on("data", (d: Buffer) => (out += d.toString("utf8")));
  const done = new Promise((r) => s.once("close", r));
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: fixed-id\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  await done;
  // Content-Length is checked against the body as sent, then masked with the rest.
  const cl = /Content-Length: (\d+)\r\n\r\n/.exec(out);
  if (cl) assert.equal(Number(cl[1]), Buffer.byteLength(out.slice(cl.index + cl[0].length)));
  return out
    .replace(/Content-Length: \d+/, "Content-Length: N")
    .replace(/chatcmpl-[0-9a-f]{32}/g, "chatcmpl-X")
    .replace(/"created":\d+/g, '"created":0')
    .replace(/Date: .*\r\n/g, "Date: X\r\n");
}

const HEAD = (type: string, extra: string[], key?: string) =>
  [
    "HTTP/1.1 200 OK",
    `content-type: ${type}`,
    "x-request-id: fixed-id",
    "access-control-allow-origin: *",
    "access-control-expose-headers: x-request-id, request-id, x-spillway-provider, x-spillway-model, x-spillway-key, x-spillway-cache, retry-after, x-should-retry",
    ...extra,
    "x-spillway-provider: up",
    "x-spillway-model: up/m",
    ...(key ? [`x-spillway-key: ${key}`] : []),
    "Date: X",
    "uWebSockets: 20",
  ].join("\r\n");

const WHOLE_BODY =
  '{"id":"chatcmpl-X","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello \\"there\\" ü","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}';
const SSE_BODY =
  'data: {"id":"chatcmpl-X","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hello \\"there\\" ü"},"logprobs":null,"finish_reason":null}]}\n\n' +
  'data: {"id":"chatcmpl-X","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n' +
  "data: [DONE]\n\n";

describe("chat answers on the wire", () => {
  let up: FakeUpstream;
  let one: TestGateway;
  let many: TestGateway;
  before(async () => {
    up = await startFakeOpenAi(() => ({ events: [chatChunk('hello "there" ü'), chatChunk(null, {}, "stop"), usageChunk(3, 2)] }));
    one = await startTestGateway({ providers: { up: { type: "openai", baseUrl: up.baseUrl, apiKey: "k" } } });
    many = await startTestGateway({ providers: { up: { type: "openai", baseUrl: up.baseUrl, apiKeys: [{ key: "a", name: "ka" }, { key: "b", name: "kb" }] } } });
  });
  after(async () => {
    await one.close();
    await many.close();
    await up.close();
  });
  const whole = JSON.stringify({ model: "up/m", messages: [{ role: "user", content: "hi" }] });
  const streamed = JSON.stringify({ model: "up/m", messages: [{ role: "user", content: "hi" }], stream: true });

  it("a whole answer, one upstream key: head and body as before", async () => {
    for (let i = 0; i < 2; i++) {
      // Twice: the second answer takes the shared header list made by the first.
      assert.equal(await raw(one.origin, whole), `${HEAD("application/json", [])}\r\nContent-Length: N\r\n\r\n${WHOLE_BODY}`);
    }
  });

  it("a whole answer, several upstream keys: the key's header after the shared ones", async () => {
    const got = await raw(many.origin, whole);
    const key = /x-spillway-key: (k[ab])\r\n/.exec(got)?.[1];
    assert.ok(key, got);
    assert.equal(got, `${HEAD("application/json", [], key)}\r\nContent-Length: N\r\n\r\n${WHOLE_BODY}`);
    // The shared list of the one-key gateway was not changed by the copy.
    assert.doesNotMatch(await raw(one.origin, whole), /\r\nx-spillway-key: /);
  });

  it("a streamed answer: head and events as before", async () => {
    const got = await raw(one.origin, streamed);
    const [head, rest] = got.split("\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert.equal(head, HEAD("text/event-stream", ["cache-control: no-cache", "x-accel-buffering: no"]));
    // Chunked framing removed: the events' text.
    const text = rest!.replace(/(^|\r\n)[0-9a-f]+\r\n/g, "");
    assert.equal(text.replace(/\r\n/g, ""), SSE_BODY);
  });
});
