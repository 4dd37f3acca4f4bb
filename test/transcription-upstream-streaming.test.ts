import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeOpenAiTranscription, type FakeOpenAiTranscription } from "./helpers/fake-openai-transcription.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { multipartAround, startUpload, type FormPart } from "./helpers/slow-upload.js";

const LIMIT = 4 * 1024 * 1024;
const AUDIO = Buffer.alloc(200_000, 7);
const FIRST = AUDIO.subarray(0, 50_000);
const REST = AUDIO.subarray(50_000);

let fake: FakeOpenAiTranscription;
let gw: TestGateway;
let url: string;
before(async () => {
  fake = await startFakeOpenAiTranscription();
  gw = await startTestGateway({
    grpc: { enabled: false },
    http: { maxUploadBytes: LIMIT },
    providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up", models: ["gpt-4o-transcribe", "whisper-1"] } },
  });
  url = `${gw.baseUrl}/audio/transcriptions`;
});
after(async () => {
  await gw.close();
  await fake.close();
});
const file = (): FormPart => ({ name: "file", filename: "speech.wav", type: "audio/wav" });
function upload(parts: readonly FormPart[], headers: Record<string, string> = {}) {
  const form = multipartAround(parts);
  const u = startUpload(url, { "content-type": form.contentType, ...headers });
  u.send(form.head);
  return { ...u, tail: form.tail };
}

describe("x", () => {
  it("streams", { timeout: 20_000 }, async () => {
    const next = fake.nextUpload();
    const u = upload([{ name: "model", value: "openai/gpt-4o-transcribe" }, { name: "stream", value: "true" }, file()]);
    u.send(FIRST);
    const up = await next;
    await up.waitForFileBytes(FIRST.length);
    assert.equal(up.complete, false);
    u.send(REST);
    u.end(u.tail);
    const r = await u.done;
    console.log(r.status, r.body.slice(0, 300), up.fields);
  });
});
