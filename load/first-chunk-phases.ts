/**
 * `npx tsx load/first-chunk-phases.ts [--rate 300] [--seconds 5] [--doors sse,grpc] [--pin]`:
 * where the gateway's share of the time to first chunk goes. Runs the mock
 * and one gateway worker with `SPILLWAY_PHASE_TRACE`
 * (src/observability/phase-trace.ts), streams chat at a fixed rate (20
 * chunks, 10 ms apart) door by door, and prints, next to the load
 * generator's TTFT direct and through the gateway:
 *
 * - the median gap between the phases of a request inside the gateway
 *   (from requests that had the process to themselves: meaningful at low rates);
 * - per door, p50/p90/p99 of arrived → first chunk at the door and first
 *   chunk at the door → its bytes handed to the socket, from every request
 *   (keyed phases: valid at any rate);
 * - with gRPC, the gRPC floor's TTFT (load/grpc-floor.ts, a bare grpc-js
 *   server streaming the same answer), so the door's added time splits into
 *   the client and protocol's share and the gateway's;
 * - per door, the path to the upstream and back, step by step (arrived →
 *   handler → upstream dispatched → its headers written by undici → the
 *   upstream's response headers → first chunk at the door), keyed too.
 *
 * `--pin`: gateway on CPU 0, mock and load generator on CPU 1, as `npm run bench -- --pin`.
 * `--floor-beside N`: the floor is run again while a second load generator
 * streams N/s straight from the mock, so the mock works on the gRPC client's
 * core as it does when a gateway is measured (the floor alone has an idle
 * mock): how much of a gRPC door's "added" the client's shared core makes.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mockModel } from "./mock-upstream.js";
import { cpuTree, runJob, setPinning, startGrpcFloor, startMock, startSpillway } from "./procs.js";
import { sleep } from "./util.js";
import type { Door } from "./loadgen.js";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "300" },
    seconds: { type: "string", default: "5" },
    doors: { type: "string", default: "sse,grpc" },
    pin: { type: "boolean", default: false },
    "floor-beside": { type: "string" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const doors = values.doors.split(",") as Door[];
if (values.pin) setPinning({ gateway: "0", others: availableParallelism() > 2 ? `1-${availableParallelism() - 1}` : "1" });
const file = join(tmpdir(), `spillway-phases-${process.pid}.json`);
const shape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
interface Pcts {
  p50: number;
  p90: number;
  p99: number;
}
interface Trace {
  requests: number;
  gaps: Array<{ from: string; to: string; p50Ms: number }>;
  totalP50Ms: number;
  doors: Record<string, { requests: number; arrivedToFirstChunk: Pcts; firstChunkToFlush: Pcts; arrivedToFlush: Pcts; flushToWritten?: Pcts; arrivedWith?: Pcts; upstream?: { requests: number; steps: Array<Pcts & { name: string }> } }>;
}
const ms = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(3));
const mock = await startMock();
const gw = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, env: { SPILLWAY_PHASE_TRACE: file } });
/** Reads the trace once the gateway has written what it gathered since the last reset. */
async function readTrace(): Promise<Trace> {
  rmSync(file, { force: true });
  for (let i = 0; i < 30; i++) {
    await sleep(100);
    if (!existsSync(file)) continue;
    // The gateway writes the file without a rename: a read can catch it half written.
    try {
      return JSON.parse(readFileSync(file, "utf8")) as Trace;
    } catch {
      continue;
    }
  }
  throw new Error(`no phase trace in ${file}`);
}
try {
  const target = (door: Door): string => (door === "grpc" ? `127.0.0.1:${gw.grpcPort}` : `http://127.0.0.1:${gw.httpPort}`);
  const jobOf = (door: Door) => ({ door, target: target(door), model: `mock/${mockModel(shape)}`, expectChunks: shape.chunks, mode: "rate" as const, rate, seconds });
  for (const door of doors) await runJob({ ...jobOf(door), seconds: 2 }); // warm-up
  console.log(`\n${rate} streams/s for ${seconds} s per run, one gateway worker${values.pin ? " pinned on CPU 0 (mock and load generator on CPU 1)" : ""}; load average ${loadavg().map((l) => l.toFixed(2)).join(", ")}`);
  const direct = await runJob({ ...jobOf("sse"), target: `http://127.0.0.1:${mock.port}`, model: mockModel(shape) });
  console.log(`direct (SSE to the mock): TTFT p50 ${ms(direct.ttft.p50)} ms, p99 ${ms(direct.ttft.p99)} ms`);
  let floorP50: number | undefined;
  if (doors.includes("grpc")) {
    // A bare grpc-js server streaming the same answer (load/grpc-floor.ts): the gRPC client and protocol's share.
    const floor = await startGrpcFloor();
    try {
      const floorJob = { ...jobOf("grpc"), target: `127.0.0.1:${floor.port}`, model: mockModel(shape) };
      await runJob({ ...floorJob, seconds: 2 });
      const cpu0 = cpuTree(floor.child.pid!);
      const f = await runJob(floorJob);
      const floorCpu = ((cpuTree(floor.child.pid!) - cpu0) * 1000) / Math.max(1, f.ok);
      floorP50 = f.ttft.p50;
      console.log(`gRPC floor (bare grpc-js server, no upstream): TTFT p50 ${ms(f.ttft.p50)} ms, p99 ${ms(f.ttft.p99)} ms (over direct SSE: p50 ${ms((f.ttft.p50 ?? NaN) - (direct.ttft.p50 ?? NaN))} ms); CPU ${floorCpu.toFixed(0)} µs / stream, ${f.lateStarts} late starts`);
      if (values["floor-beside"] !== undefined) {
        const beside = Number(values["floor-beside"]);
        const mock0 = cpuTree(mock.child.pid!);
        const [fb] = await Promise.all([runJob(floorJob), runJob({ ...jobOf("sse"), target: `http://127.0.0.1:${mock.port}`, model: mockModel(shape), rate: beside, seconds: seconds + 1 })]);
        const mockShare = ((cpuTree(mock.child.pid!) - mock0) / ((seconds + 1) * 1000)) * 100;
        console.log(`gRPC floor with the mock serving ${beside}/s beside it (mock ${mockShare.toFixed(0)}% of a core, on the client's core when pinned): TTFT p50 ${ms(fb.ttft.p50)} ms, p99 ${ms(fb.ttft.p99)} ms, ${fb.lateStarts} late starts`);
      }
    } finally {
      await floor.stop();
    }
  }
  for (const door of doors) {
    gw.child.kill("SIGUSR2");
    await sleep(100);
    const cpu0 = cpuTree(gw.child.pid!);
    const mock0 = cpuTree(mock.child.pid!);
    const through = await runJob(jobOf(door));
    // The gateway's CPU (user + system, /proc) over the run, per completed stream: steadier than latency on a shared host.
    const cpuPerStream = ((cpuTree(gw.child.pid!) - cpu0) * 1000) / Math.max(1, through.ok);
    // With --pin the mock and the load generator share a core: how busy each kept it (a busy client slows the mock's answers).
    const busy = (cpuMs: number): string => `${((cpuMs / (through.elapsedS * 1000)) * 100).toFixed(0)}%`;
    const shares = `gateway ${busy(cpuTree(gw.child.pid!) - cpu0)}, mock ${busy(cpuTree(mock.child.pid!) - mock0)}, load generator ${through.loadgenCpuMs === undefined ? "–" : busy(through.loadgenCpuMs)} of a core`;
    await sleep(200);
    const trace = await readTrace();
    const overFloor = door === "grpc" && floorP50 !== undefined ? `, over the gRPC floor ${ms((through.ttft.p50 ?? NaN) - floorP50)} ms` : "";
    console.log(`\n## ${door}: TTFT p50 ${ms(through.ttft.p50)} ms, p99 ${ms(through.ttft.p99)} ms (added p50 ${ms((through.ttft.p50 ?? NaN) - (direct.ttft.p50 ?? NaN))} ms${overFloor}); gateway CPU ${cpuPerStream.toFixed(0)} µs / stream, ${through.lateStarts} late starts; ${shares}\n`);
    console.log(`Inside the gateway, median of ${trace.requests} requests that had the process to themselves:\n`);
    console.log("| from | to | p50 ms |\n| --- | --- | --- |");
    for (const g of trace.gaps) console.log(`| ${g.from} | ${g.to} | ${ms(g.p50Ms)} |`);
    console.log(`| arrived | first bytes flushed | **${ms(trace.totalP50Ms)}** |`);
    const d = trace.doors[door];
    if (d) {
      console.log(`\nEvery request (${d.requests}), keyed by the door's own object:\n`);
      console.log("| span | p50 ms | p90 ms | p99 ms |\n| --- | --- | --- | --- |");
      const spans: Array<[string, Pcts]> = [
        ["arrived → first chunk at the door", d.arrivedToFirstChunk],
        ["first chunk at the door → bytes handed to the socket", d.firstChunkToFlush],
        ["arrived → bytes handed to the socket", d.arrivedToFlush],
        ...(d.flushToWritten ? [["bytes handed to the socket → HTTP/2 write callback", d.flushToWritten] as [string, Pcts]] : []),
      ];
      for (const [name, p] of spans) {
        console.log(`| ${name} | ${ms(p.p50)} | ${ms(p.p90)} | ${ms(p.p99)} |`);
      }
      if (d.arrivedWith) console.log(`| requests arrived in the same loop turn (count, not ms) | ${d.arrivedWith.p50} | ${d.arrivedWith.p90} | ${d.arrivedWith.p99} |`);
      if (d.upstream && d.upstream.requests > 0) {
        console.log(`\nThe path to the upstream and back, per request (${d.upstream.requests} with every step in order):\n`);
        console.log("| step | p50 ms | p90 ms | p99 ms |\n| --- | --- | --- | --- |");
        for (const p of d.upstream.steps) console.log(`| ${p.name} | ${ms(p.p50)} | ${ms(p.p90)} | ${ms(p.p99)} |`);
      }
    }
  }
} finally {
  await gw.stop();
  await mock.stop();
}
