/**
 * `/v1/audio/transcriptions` with `stream=true` and local pocketsphinx
 * (`local/stt`), which decodes and recognizes the upload as it arrives: a
 * raw client sends the model first, then speech (made by local/tts) up to
 * the end of its first sentences, and sends the rest only once a
 * `transcript.text.delta` came back — proof that text streams before the
 * body is complete. The recognizer is killed when the client goes away
 * mid-upload.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { childProcesses, waitFor } from "./helpers/processes.js";
import { multipartAround, startUpload } from "./helpers/slow-upload.js";
import { postJson } from "./helpers/sse.js";

const TEXT = "Hello world. The quick brown fox jumps over the lazy dog. We will go to the park today. It is a sunny day.";

describe("stream=true with local/stt while the upload arrives", () => {
  let gw: TestGateway;
  let wav: Buffer;
  before(async () => {
    gw = await startTestGateway({ grpc: { enabled: false } });
    const res = await postJson(`${gw.baseUrl}/audio/speech`, { model: "local/tts", input: TEXT, voice: "alloy", response_format: "wav" });
    assert.equal(res.status, 200);
    wav = Buffer.from(await res.arrayBuffer());
  });
  after(() => gw.close());

  const start = () => {
    const form = multipartAround([
      { name: "model", value: "local/stt" },
      { name: "stream", value: "true" },
      { name: "file", filename: "speech.wav", type: "audio/wav" },
    ]);
    const u = startUpload(`${gw.baseUrl}/audio/transcriptions`, { "content-type": form.contentType, "content-length": String(form.head.length + wav.length + form.tail.length) });
    u.send(form.head);
    return { u, tail: form.tail };
  };

  it("the first delta comes back before the client has sent the rest of the audio", { timeout: 60_000 }, async () => {
    const { u, tail } = start();
    const cut = Math.floor(wav.length * 0.6);
    u.send(wav.subarray(0, cut));
    // Nothing more is sent until text came back: without streaming this would never resolve.
    const first = await u.waitForEvent((e) => e?.type === "transcript.text.delta");
    assert.ok(first.delta.trim().length > 0);
    assert.equal((await u.head).status, 200);
    u.send(wav.subarray(cut));
    u.end(tail);
    const r = await u.done;
    assert.equal(r.status, 200);
    assert.equal(u.events.at(-1), "[DONE]");
    const events = u.events.slice(0, -1) as Array<Record<string, any>>;
    for (const e of events) assertSchema("CreateTranscriptionResponseStreamEvent", e);
    const done = events.at(-1)!;
    assert.equal(done["type"], "transcript.text.done");
    assert.equal(events.filter((e) => e["type"] === "transcript.text.delta").map((e) => e["delta"]).join(""), done["text"]);
    assert.ok(String(done["text"]).split(/\s+/).length >= 6, done["text"]);
  });

  it("a client that goes away mid-upload: pocketsphinx is killed", { timeout: 60_000 }, async () => {
    const { u } = start();
    u.send(wav.subarray(0, Math.floor(wav.length * 0.6)));
    await u.waitForEvent((e) => e?.type === "transcript.text.delta");
    const running = (): boolean => childProcesses().some((c) => c.name.startsWith("pocketsphinx"));
    assert.ok(running(), "pocketsphinx runs while the upload arrives");
    u.destroy();
    await waitFor(() => !running(), 5000, "pocketsphinx to be killed and reaped");
    assert.deepEqual(childProcesses().filter((c) => c.state === "Z"), [], "no zombie children");
  });
});
