/**
 * `npx tsx load/first-chunk-phases.ts [--rate 300] [--seconds 5]`: where the
 * gateway's share of the time to first chunk goes. Runs the mock and one
 * gateway worker with `SPILLWAY_PHASE_TRACE` (src/observability/phase-trace.ts),
 * streams chat at a fixed rate (20 chunks, 10 ms apart), and prints the median
 * gap between the phases of a request inside the gateway next to the
 * load generator's TTFT direct and through the gateway.
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mockModel } from "./mock-upstream.js";
import { runJob, startMock, startSpillway } from "./procs.js";
import { sleep } from "./util.js";

const { values } = parseArgs({ options: { rate: { type: "string", default: "300" }, seconds: { type: "string", default: "5" } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const file = join(tmpdir(), `spillway-phases-${process.pid}.json`);
const shape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
const mock = await startMock();
const gw = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, env: { SPILLWAY_PHASE_TRACE: file } });
try {
  const gwJob = { door: "sse" as const, target: `http://127.0.0.1:${gw.httpPort}`, model: `mock/${mockModel(shape)}`, expectChunks: shape.chunks, mode: "rate" as const, rate, seconds };
  await runJob({ ...gwJob, seconds: 2 }); // warm-up
  const direct = await runJob({ ...gwJob, target: `http://127.0.0.1:${mock.port}`, model: mockModel(shape) });
  const through = await runJob(gwJob);
  await sleep(1500);
  const trace = JSON.parse(readFileSync(file, "utf8")) as { requests: number; gaps: Array<{ from: string; to: string; p50Ms: number }>; totalP50Ms: number };
  const ms = (x: number | undefined): string => (x === undefined ? "–" : x.toFixed(3));
  console.log(`\n${rate} streams/s for ${seconds} s, one worker. TTFT p50 direct ${ms(direct.ttft.p50)} ms, through Spillway ${ms(through.ttft.p50)} ms (added ${ms((through.ttft.p50 ?? NaN) - (direct.ttft.p50 ?? NaN))} ms)\n`);
  console.log(`Inside the gateway (median of ${trace.requests} requests that had the process to themselves):\n`);
  console.log("| from | to | p50 ms |\n| --- | --- | --- |");
  for (const g of trace.gaps) console.log(`| ${g.from} | ${g.to} | ${ms(g.p50Ms)} |`);
  console.log(`| arrived | first bytes flushed | **${ms(trace.totalP50Ms)}** |`);
} finally {
  await gw.stop();
  await mock.stop();
}
