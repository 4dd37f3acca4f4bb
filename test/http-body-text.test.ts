/**
 * The HTTP door reads a JSON body as UTF-8 text (issue 16 wave 6: a body in one piece is decoded
 * straight from uWS's buffer, one in several pieces is gathered and decoded once whole). A
 * character split between two pieces must reach the upstream whole, as must one in a body that
 * came in one piece; invalid JSON is still the same 400.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { chatChunk, startFakeOpenAi, usageChunk, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

/** Sends one POST in `pieces` (separate socket writes, a pause between them) and returns the raw answer. */
async function postInPieces(port: number, path: string, pieces: Buffer[]): Promise<string> {
  const body = Buffer.concat(pieces);
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
  for (const p of pieces) {
    socket.write(p);
    // Separate TCP reads on the gateway's side (uWS hands each read to the body callback).
    await sleep(30);
  }
  await ended;
  return answer;
}

describe("the JSON body read as text", () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startFakeOpenAi(() => ({ events: [chatChunk("ok"), chatChunk(null, {}, "stop"), usageChunk(1, 1)] }));
    gw = await startTestGateway({ providers: { up: { type: "openai", baseUrl: up.baseUrl, apiKey: "k" } } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  const content = "grüß dich, 東京 🌍";
  const json = Buffer.from(JSON.stringify({ model: "up/m", messages: [{ role: "user", content }] }), "utf8");

  it("a character split between two pieces of the body reaches the upstream whole", async () => {
    // Cut inside the 4-byte emoji.
    const cut = json.indexOf(Buffer.from("🌍", "utf8")) + 2;
    const answer = await postInPieces(Number(new URL(gw.origin).port), "/v1/chat/completions", [json.subarray(0, cut), json.subarray(cut)]);
    assert.match(answer, /^HTTP\/1\.1 200 OK/);
    const sent = up.requests.at(-1)!.body as { messages: Array<{ content: string }> };
    assert.equal(sent.messages[0]!.content, content);
  });

  it("a body in one piece reaches the upstream the same", async () => {
    const answer = await postInPieces(Number(new URL(gw.origin).port), "/v1/chat/completions", [json]);
    assert.match(answer, /^HTTP\/1\.1 200 OK/);
    const sent = up.requests.at(-1)!.body as { messages: Array<{ content: string }> };
    assert.equal(sent.messages[0]!.content, content);
  });

  it("malformed JSON in several pieces is the same 400 as before", async () => {
    const bad = Buffer.from('{"model": "up/m", "messages": [', "utf8");
    const answer = await postInPieces(Number(new URL(gw.origin).port), "/v1/chat/completions", [bad.subarray(0, 10), bad.subarray(10)]);
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /We could not parse the JSON body of your request/);
  });
});
