/**
 * Resumable chat streams: `x-spillway-resumable: true` gives every SSE event
 * an `id: <stream id>:<seq>` line and keeps generating when the client
 * leaves; a reconnect with `Last-Event-ID` gets exactly the rest.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const KEYS = [
  { key: "sk-chat-resume-a1", name: "a" },
  { key: "sk-chat-resume-b2", name: "b" },
];
const TEXT = Array.from({ length: 20 }, (_, i) => `c${i}`).join(" ");

interface Frame {
  id: string | undefined;
  data: string;
}

function frames(text: string): Frame[] {
  return text
    .split("\n\n")
    .filter((f) => f.includes("data: "))
    .map((f) => {
      const lines = f.split("\n");
      return { id: lines.find((l) => l.startsWith("id: "))?.slice(4), data: lines.find((l) => l.startsWith("data: "))!.slice(6) };
    });
}

function content(fs: Frame[]): string {
  return fs
    .filter((f) => f.data !== "[DONE]")
    .map((f) => (JSON.parse(f.data) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content ?? "")
    .join("");
}

describe("resumable chat streams (Last-Event-ID)", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ auth: { keys: KEYS }, providers: { local: { type: "local", tokenDelayMs: 15 } } });
  });
  after(() => gw.close());

  const post = (key: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> =>
    fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: "local/echo", stream: true, messages: [{ role: "user", content: TEXT }] }),
      ...(signal ? { signal } : {}),
    });

  it("a client cut mid-stream reconnects with Last-Event-ID and gets exactly the rest", async () => {
    const ac = new AbortController();
    const res = await post(KEYS[0]!.key, { "x-spillway-resumable": "true" }, ac.signal);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = "";
    const dec = new TextDecoder();
    while (frames(text).length < 4) text += dec.decode((await reader.read()).value);
    ac.abort();
    const got = frames(text.slice(0, text.lastIndexOf("\n\n") + 2));
    const lastId = got.at(-1)!.id!;
    assert.match(lastId, /^[0-9a-f]{32}:\d+$/);
    const rest = await post(KEYS[0]!.key, { "last-event-id": lastId });
    assert.equal(rest.status, 200);
    const more = frames(await rest.text());
    const all = [...got, ...more];
    const seqs = all.filter((f) => f.id).map((f) => Number(f.id!.split(":")[1]));
    // Every chunk that renders an event, once, in order (the usage chunk renders none: it rides on the finish).
    assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), "no duplicate, in order");
    assert.equal(seqs[0], 0);
    assert.ok(seqs.every((v, i) => i === 0 || v - seqs[i - 1]! <= 2), "no gap beyond the usage chunk");
    assert.equal(all.at(-1)!.data, "[DONE]");
    assert.equal(content(all), TEXT);

    // Someone else's id is unknown; a malformed one is a 400 naming the header.
    const other = await post(KEYS[1]!.key, { "last-event-id": lastId });
    assert.equal(other.status, 404);
    const bad = await post(KEYS[0]!.key, { "last-event-id": "nope" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, "Last-Event-ID");
  });
});
