/** Micro-benchmark of the request log line (issue 16): CPU µs per line through the gateway's logger, stdout piped. */
import { createLogger } from "../src/observability/logger.js";
const log = createLogger();
const line = (i: number) => ({ requestId: "0b7c3a4e-5f0a-4a57-9d7e-3f9a1c2b8e11", streamId: "a1b2c3d4e5f60718293a4b5c6d7e8f90", door: "http", route: "/v1/chat/completions", shape: "openai", model: "mock/m-c20-b16-d0-f0", provider: "mock", caller: "anonymous", key: undefined, status: 200, outcome: "ok", ttftMs: 1.23 + i, durationMs: 2.5, inputTokens: 5, outputTokens: 20, reasoningTokens: undefined, chunks: 22, bytesOut: 4000, clientDisconnected: false, error: undefined, cache: undefined, cachedInputTokens: undefined, traceId: undefined });
const N = Number(process.argv[2] ?? 100000);
for (let i = 0; i < 20000; i++) log.info(line(i), "request finished");
await new Promise((r) => setTimeout(r, 300));
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) log.info(line(i), "request finished");
await new Promise((r) => setTimeout(r, 300));
const c = process.cpuUsage(c0);
process.stderr.write(`${(((c.user + c.system) / N)).toFixed(2)} µs/line (user ${(c.user / N).toFixed(2)} sys ${(c.system / N).toFixed(2)})\n`);
