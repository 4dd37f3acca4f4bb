/**
 * `tsx load/hotpath-record.ts [N]`: CPU µs per finished request of `recordRequest` (the request
 * log line through the gateway's logger, stdout piped, and the request metrics), for a
 * non-streamed chat as the HTTP door records it (issue 16, wave 5). Prints total, log-only and
 * metrics-only figures (each median of 5 batches).
 */
import { createLogger } from "../src/observability/logger.js";
import { createMetrics } from "../src/observability/metrics.js";
import { recordRequest, type Observability, type RequestRecord } from "../src/observability/observability.js";
import type { StreamSummary } from "../src/engine/active-stream.js";
import { pino } from "pino";

const N = Number(process.argv[2] ?? 50000);
const summary = {
  id: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
  route: { id: "mock/m-c20-b16-d0-f0", provider: { name: "mock" } },
  labels: {},
  outcome: "ok",
  finishReason: 1,
  usage: { inputTokens: 5, outputTokens: 20, totalTokens: 25, reasoningTokens: 0, cachedInputTokens: 0, inputAudioSeconds: 0, outputAudioSeconds: 0 },
  chunks: 22,
  startedAt: 0,
  firstChunkAt: 0,
  endedAt: 0,
} as unknown as StreamSummary;
function rec(i: number): RequestRecord {
  const t = performance.now();
  return { requestId: "0b7c3a4e-5f0a-4a57-9d7e-3f9a1c2b8e11", door: "http", route: "/v1/chat/completions", shape: "openai", caller: undefined, status: 200, startedAt: t - 1.5 - (i % 7) / 10, summary: { ...summary, firstChunkAt: t - 0.5, endedAt: t }, error: undefined, bytesOut: 412, clientDisconnected: false, span: undefined };
}
const metrics = createMetrics({ knownModels: ["mock/m-c20-b16-d0-f0"] });
const full: Observability = { metrics, logger: createLogger() };
const silent: Observability = { metrics, logger: pino({ level: "silent" }) };
const records = Array.from({ length: 1000 }, (_, i) => rec(i));
function run(obs: Observability): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) recordRequest(obs, records[i % 1000]!);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}
const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
run(full);
run(silent);
const a: number[] = [], b: number[] = [];
for (let k = 0; k < 5; k++) {
  a.push(run(full));
  await new Promise((r) => setTimeout(r, 150));
  b.push(run(silent));
}
process.stderr.write(`recordRequest ${med(a).toFixed(2)} µs (log + metrics), ${med(b).toFixed(2)} µs with a silent logger (metrics), log ≈ ${(med(a) - med(b)).toFixed(2)} µs\n`);
