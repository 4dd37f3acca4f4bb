/**
 * `tsx load/hotpath-micro.ts`: in-process CPU of the engine + chat shape work of one request, no
 * sockets (issue 16): a provider whose payloads are all ready (20 text chunks, usage, finish),
 * `engine.generate`, then the SSE encoder over the stream (streamed) or collectText + the
 * chat.completion JSON (non-streamed), plus the request parse. µs of CPU per request.
 */
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import { finishPayload, textPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import type { Provider } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import { parseChatCompletion } from "../src/doors/http/shapes/openai-chat/request.js";
import { ChatSseEncoder } from "../src/doors/http/shapes/openai-chat/stream.js";
import { collectText } from "../src/doors/http/shapes/collect.js";
import { chatCompletionJson } from "../src/doors/http/shapes/openai-chat/json.js";

function payloads(): ChunkPayload[] {
  const out: ChunkPayload[] = [];
  for (let i = 0; i < 20; i++) out.push(textPayload("xxxxxxxxxxxxxxxx"));
  out.push(finishPayload(Finish_Reason.REASON_STOP), usagePayload({ inputTokens: 5, outputTokens: 20, totalTokens: 25 }));
  return out;
}
async function* gen(): AsyncGenerator<ChunkPayload> {
  yield* payloads();
}
const provider: Provider = { name: "mock", listModels: () => Promise.resolve([]), generate: () => gen() };
const engine = createStreamEngine({ router: createRouter([provider]), shutdownSignal: new AbortController().signal });
const raw = (stream: boolean) => JSON.stringify({ model: "mock/m", messages: [{ role: "user", content: "hi" }], stream });

async function once(stream: boolean): Promise<number> {
  const client = new AbortController();
  const parsed = parseChatCompletion(JSON.parse(raw(stream)));
  const s = await engine.generate(parsed.request, { signal: client.signal });
  if (stream) {
    const enc = new ChatSseEncoder(s, false);
    let out = "";
    for await (const c of s) out += enc.encode(c);
    return out.length;
  }
  return JSON.stringify(chatCompletionJson(s, await collectText(s))).length;
}

for (const stream of [false, true]) {
  for (let i = 0; i < 5000; i++) await once(stream);
  const N = 50000;
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await once(stream);
  const c = process.cpuUsage(c0);
  console.log(`${stream ? "streamed" : "whole   "} ${((c.user + c.system) / N).toFixed(2)} µs CPU per request (in-process engine + shape)`);
}
