/**
 * Time to first audio byte vs. total synthesis time of POST /v1/audio/speech
 * for a long input (several paragraphs), with the local espeak-ng engine:
 * shows that speech streams as it is made rather than after the whole text.
 *
 *   npx tsx load/tts-first-byte.ts [--runs 5] [--format mp3|wav|pcm|opus] [--url http://127.0.0.1:8080]
 *
 * Without --url a gateway is started in this process on a free loopback port.
 */
import { parseArgs } from "node:util";
import { startTestGateway } from "../test/helpers/gateway.js";

const PARAGRAPH =
  "Streaming speech means the listener hears the beginning while the end is still being made. " +
  "Each sentence is synthesized in turn, and its audio leaves the gateway as soon as it exists. " +
  "A slow client holds the engine back, so nothing piles up in memory. " +
  "When the client goes away, the engine process is stopped at once.";
const INPUT = Array.from({ length: 8 }, (_, i) => `Part ${i + 1}. ${PARAGRAPH}`).join("\n\n");

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    format: { type: "string", default: "mp3" },
    url: { type: "string" },
    model: { type: "string", default: "local/tts" },
  },
});

const gw = values.url ? undefined : await startTestGateway({ grpc: { enabled: false } });
const base = values.url ?? gw!.origin;
const host = new URL(base).hostname.replace(/^\[|\]$/g, "");
if (!(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host))) {
  throw new Error(`refusing to benchmark ${host}: only loopback targets are allowed`);
}

const rows: Array<{ firstByteMs: number; totalMs: number; bytes: number }> = [];
for (let i = 0; i < Number(values.runs); i++) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: values.model, input: INPUT, voice: "alloy", response_format: values.format }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    if (bytes === 0 && chunk.length > 0) first = performance.now() - t0;
    bytes += chunk.length;
  }
  rows.push({ firstByteMs: first, totalMs: performance.now() - t0, bytes });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`input: ${INPUT.length} characters, format ${values.format}, model ${values.model}, ${rows.length} runs`);
console.table(rows.map((r) => ({ "first byte (ms)": r.firstByteMs.toFixed(1), "total (ms)": r.totalMs.toFixed(1), bytes: r.bytes })));
const fb = median(rows.map((r) => r.firstByteMs));
const total = median(rows.map((r) => r.totalMs));
console.log(`median time to first audio byte: ${fb.toFixed(1)} ms; median total synthesis: ${total.toFixed(1)} ms (first byte at ${((100 * fb) / total).toFixed(1)}% of the total)`);
await gw?.close();
