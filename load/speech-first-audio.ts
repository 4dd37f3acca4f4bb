/**
 * Which way of speaking a realtime reply gives the earlier first audio: the
 * reply's text streamed to ElevenLabs' input-streaming socket as it is
 * written (`streamInput: true`, one socket per response, flushed at sentence
 * ends), or sentence by sentence over the streaming HTTP endpoint
 * (`streamInput: false`). Fakes at realistic latencies, in this process:
 * the text model 300 ms to its first token then a token every 20 ms
 * (test/helpers/fake-openai.ts), ElevenLabs 150 ms from a request (HTTP) or a
 * generation's trigger (WebSocket) to its first audio
 * (test/helpers/fake-elevenlabs.ts). Measured: `response.create` sent →
 * first `response.output_audio.delta` received, over a realtime session
 * driven with `ws`.
 *
 *   npx tsx load/speech-first-audio.ts [--turns 20] [--json]
 */
import { parseArgs } from "node:util";
import { chatEvents, startFakeOpenAi } from "../test/helpers/fake-openai.js";
import { ELEVENLABS_KEY, startFakeElevenLabs } from "../test/helpers/fake-elevenlabs.js";
import { startTestGateway } from "../test/helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "../test/helpers/realtime.js";
import { summarize, type Summary } from "./stats.js";

const { values } = parseArgs({ options: { turns: { type: "string", default: "20" }, json: { type: "boolean", default: false } } });
const turns = Number(values.turns);

const REPLY = "Sure, I can help with that. Your order shipped yesterday and should arrive on Friday. Is there anything else I can do?";
/** The reply as a text model streams it: about four characters a token. */
const TOKENS = REPLY.match(/.{1,4}/g)!;

const openai = await startFakeOpenAi(() => ({ events: chatEvents(TOKENS), headerDelayMs: 300, delayMs: 20 }));
const eleven = await startFakeElevenLabs({ firstByteMs: 150, pieceDelayMs: 5, msPerChar: 60 });

interface Variant {
  readonly name: string;
  readonly settings: Record<string, unknown>;
}
const variants: Variant[] = [
  { name: "sentences over HTTP (streamInput: false)", settings: { streamInput: false } },
  { name: "input streaming, flush at sentence ends (streamInput: true)", settings: {} },
];

const rows: Array<{ variant: string; firstAudio: Summary }> = [];
for (const v of variants) {
  const gw = await startTestGateway({
    grpc: { enabled: false },
    providers: {
      openai: { type: "openai", baseUrl: openai.baseUrl, apiKey: "sk" },
      elevenlabs: { type: "elevenlabs", baseUrl: eleven.baseUrl, apiKey: ELEVENLABS_KEY, ...v.settings },
    },
    realtime: { profiles: { "bench/voice": { stt: "local/stt", text: "openai/gpt-fake", tts: "elevenlabs/eleven_flash_v2_5", voice: "voice1" } } },
  });
  const c = await RealtimeTestClient.connect(realtimeUrl(gw.origin, "bench/voice"), { validate: false });
  await c.next("session.created");
  const samples: number[] = [];
  for (let i = 0; i < turns + 2; i++) {
    const from = c.events.length;
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Where is my order?" }] } });
    const t0 = performance.now();
    c.send({ type: "response.create", response: { conversation: "none" } });
    await c.next("response.output_audio.delta", () => true, 20_000, from);
    const t1 = performance.now();
    await c.next("response.done", () => true, 20_000, from);
    if (i >= 2) samples.push(t1 - t0); // the first two warm connections and code paths
  }
  await c.close();
  await gw.close();
  const firstAudio = summarize(samples);
  rows.push({ variant: v.name, firstAudio });
  if (!values.json) console.log(`${v.name}: first audio p50 ${firstAudio.p50} ms, p90 ${firstAudio.p90} ms (n=${firstAudio.n})`);
}
await openai.close();
await eleven.close();
if (values.json) console.log(`RESULT ${JSON.stringify(rows)}`);
