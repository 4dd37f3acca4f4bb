/**
 * `tsx load/grpcws-cpu.ts [--trees <dir>,<dir>] [--doors sse,grpc,ws] [--seconds 4] [--concurrency 32] [--delays 0,1] [--rounds 1] [--counts 2,200]`:
 * CPU µs per stream and per chunk of each door (issue 16), every tree in one run.
 *
 * For each tree a gateway (`src/main.ts --workers 1`) runs against one mock
 * upstream. Each job is a closed loop of `concurrency` streams for `seconds`,
 * of short and of long streams (`--counts`, default 2 and 200 chunks); the
 * gateway's CPU (utime + stime from /proc) over the job divided by the
 * streams served is the CPU per stream, and (per long stream − per short
 * stream) / (chunks difference) the CPU per chunk; the median over rounds. Trees
 * take turns job by job so host noise hits them alike. `--delays`: ms
 * between upstream chunks (0: the mock writes the whole answer at once, so
 * many chunks arrive in one read; 1: one chunk per read).
 */
import { parseArgs } from "node:util";
import type { Door } from "./loadgen.js";
import { mockModel, type MockShape } from "./mock-upstream.js";
import { cpuTree, ROOT, runJob, startMock, startSpillway } from "./procs.js";
import { wsUrl } from "./scenarios.js";

const { values } = parseArgs({
  options: {
    trees: { type: "string", default: ROOT },
    doors: { type: "string", default: "sse,grpc,ws" },
    seconds: { type: "string", default: "4" },
    concurrency: { type: "string", default: "32" },
    delays: { type: "string", default: "0" },
    rounds: { type: "string", default: "1" },
    counts: { type: "string", default: "2,200" },
  },
});

const trees = values.trees.split(",");
const doors = values.doors.split(",") as Door[];
const delays = values.delays.split(",").map(Number);
const COUNTS = values.counts.split(",").map(Number) as [number, number];
const [FEW, MANY] = COUNTS;
const shapes: MockShape[] = delays.flatMap((d) => COUNTS.map((c) => ({ chunks: c, bytes: 16, delayMs: d, firstMs: 0 })));

const mock = await startMock();
const realtime = Object.fromEntries(shapes.map((s) => [`mock/rt-${mockModel(s)}`, mockModel(s)]));
const gws: Array<{ root: string; gw: Awaited<ReturnType<typeof startSpillway>> }> = [];
for (const root of trees) gws.push({ root, gw: await startSpillway({ mockPort: mock.port, workers: 1, realtime, root }) });

function target(door: Door, gw: { httpPort: number; grpcPort: number }, s: MockShape): string {
  if (door === "grpc") return `127.0.0.1:${gw.grpcPort}`;
  if (door === "ws") return wsUrl(gw.httpPort, `mock/rt-${mockModel(s)}`);
  return `http://127.0.0.1:${gw.httpPort}`;
}

/** One job; returns CPU µs per stream. */
async function measure(door: Door, g: (typeof gws)[number], s: MockShape, seconds: number): Promise<{ us: number; ok: number; errors: number }> {
  const pid = g.gw.child.pid!;
  const before = cpuTree(pid);
  const r = await runJob({ door, target: target(door, g.gw, s), model: `mock/${mockModel(s)}`, expectChunks: s.chunks, mode: "closed", concurrency: Number(values.concurrency), seconds });
  const ms = cpuTree(pid) - before;
  return { us: r.ok > 0 ? Math.round((ms * 1000) / r.ok) : NaN, ok: r.ok, errors: r.errors };
}

// Warm-up (JIT, pools): every tree, door and shape once, briefly.
for (const door of doors) for (const s of shapes) for (const g of gws) await measure(door, g, s, 1);

const results = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const door of doors) {
    for (const s of shapes) {
      for (const g of gws) {
        const m = await measure(door, g, s, Number(values.seconds));
        const key = `${g.root}|${door}|${s.delayMs}|${s.chunks}`;
        results.set(key, [...(results.get(key) ?? []), m.us]);
        process.stderr.write(`[grpcws] ${g.root} ${door} d${s.delayMs} c${s.chunks}: ${m.us} µs/stream (${m.ok} ok, ${m.errors} errors)\n`);
      }
    }
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`| tree | delay | door | µs / ${FEW}-chunk stream | µs / ${MANY}-chunk stream | µs / chunk | per chunk ÷ SSE |`);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const d of delays) {
  for (const g of gws) {
    const perChunk = new Map<Door, number>();
    for (const door of doors) {
      const a = median(results.get(`${g.root}|${door}|${d}|${FEW}`)!);
      const b = median(results.get(`${g.root}|${door}|${d}|${MANY}`)!);
      perChunk.set(door, (b - a) / (MANY - FEW));
    }
    for (const door of doors) {
      const a = median(results.get(`${g.root}|${door}|${d}|${FEW}`)!);
      const b = median(results.get(`${g.root}|${door}|${d}|${MANY}`)!);
      const pc = perChunk.get(door)!;
      const sse = perChunk.get("sse");
      console.log(`| ${g.root} | ${d} ms | ${door} | ${a} | ${b} | ${pc.toFixed(2)} | ${sse ? (pc / sse).toFixed(2) : "–"} |`);
    }
  }
}

for (const g of gws) await g.gw.stop();
await mock.stop();
