/**
 * `tsx load/alloc-doors.ts [--trees name=ROOT,…] [--modes sse,grpc,ws,json] [--seconds 5] [--rounds 1] [--top 20]`:
 * bytes allocated per request on each door (issue 16, "alloc16"). Starts the mock upstream and one
 * gateway per tree (`--workers 1`, the CPU benchmark's config and realtime profiles) with
 * load/hotpath-alloc-sampler.ts preloaded (V8's sampling heap profiler, objects collected by either
 * GC included), then, for every (round, mode, tree) in turns: a 2 s warm-up turn, then a sampled
 * turn of `--seconds` (closed loop of 32 connections: autocannon for SSE / JSON, the lean gRPC and
 * realtime clients of load/loadgen.ts), so the bytes of that window divide by the exact count of
 * answers the load side checked complete. Mode answers: 20 content chunks of 16 bytes 1 ms apart
 * (the CPU benchmark's `STREAM_SHAPE`: 22 events on SSE). Prints per mode and tree the bytes per
 * request, the top allocating functions (self bytes per request) and the top gateway functions
 * (each sample charged to the nearest frame in the tree's `src/`); writes all of it as JSON to
 * `--out` (default a temp file, printed).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startTurnWorker, type TurnJob } from "./cannon.js";
import { cpuRealtimeProfiles, STREAM_SHAPE } from "./cpu.js";
import { mockModel } from "./mock-upstream.js";
import { ROOT, startMock, startSpillway } from "./procs.js";
import { wsUrl } from "./scenarios.js";
import { sleep } from "./util.js";

const { values } = parseArgs({
  options: {
    trees: { type: "string", default: `this=${ROOT}` },
    modes: { type: "string", default: "sse,grpc,ws,json" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "1" },
    top: { type: "string", default: "20" },
    out: { type: "string" },
  },
});
const trees = values.trees.split(",").map((t) => {
  const [name, root] = t.split("=");
  return { name: name!, root: root! };
});
const modes = values.modes.split(",");
const seconds = Number(values.seconds);
const top = Number(values.top);
const sampler = join(import.meta.dirname, "hotpath-alloc-sampler.ts");
const dir = mkdtempSync(join(tmpdir(), "alloc-doors-"));
const outJson = values.out ?? join(dir, "result.json");

interface Node { callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; selfSize: number; children: Node[] }

const mock = await startMock();
const worker = startTurnWorker();
const gws: { name: string; root: string; gw: Awaited<ReturnType<typeof startSpillway>>; file: string }[] = [];
for (const [i, t] of trees.entries()) {
  const file = join(dir, `alloc-${i}.json`);
  const gw = await startSpillway({ mockPort: mock.port, workers: 1, realtime: cpuRealtimeProfiles(), root: t.root, nodeArgs: ["--import", "tsx", "--import", sampler], env: { ALLOC_OUT: file } });
  gws.push({ ...t, gw, file });
}
const model = mockModel(STREAM_SHAPE);
function jobFor(mode: string, g: (typeof gws)[number], secs: number): TurnJob {
  if (mode === "sse" || mode === "json") {
    return { kind: "cannon", job: { origin: `http://127.0.0.1:${g.gw.httpPort}`, model: `mock/${model}`, stream: mode === "sse", expectChunks: STREAM_SHAPE.chunks, connections: 32, seconds: secs } };
  }
  if (mode === "grpc") return { kind: "closed", job: { door: "grpc", target: `127.0.0.1:${g.gw.grpcPort}`, model: `mock/${model}`, expectChunks: STREAM_SHAPE.chunks, mode: "closed", concurrency: 32, seconds: secs } };
  return { kind: "closed", job: { door: "ws", target: wsUrl(g.gw.httpPort, `mock/rt-${model}`), model: "", expectChunks: STREAM_SHAPE.chunks, mode: "closed", concurrency: 32, seconds: secs } };
}

/** Stops what this run started (also when a turn failed). */
async function stopAll(): Promise<void> {
  await worker.stop();
  for (const g of gws) await g.gw.stop();
  await mock.stop();
}
process.once("uncaughtException", (e) => {
  console.error(e);
  void stopAll().finally(() => process.exit(1));
});
process.once("unhandledRejection", (e) => {
  console.error(e);
  void stopAll().finally(() => process.exit(1));
});

const results: { round: number; mode: string; tree: string; ok: number; failed: number; bytesPerRequest: number; self: [string, number][]; src: [string, number][] }[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  for (const mode of modes) {
    const order = gws.map((_, i) => gws[(i + round) % gws.length]!);
    for (const g of order) {
      await worker.run(jobFor(mode, g, 2));
      rmSync(g.file, { force: true });
      g.gw.child.kill("SIGUSR2");
      await sleep(300);
      const r = await worker.run(jobFor(mode, g, seconds));
      g.gw.child.kill("SIGUSR2");
      const started = Date.now();
      while (!existsSync(g.file) && Date.now() - started < 30_000) await sleep(200);
      await sleep(200);
      const profile = JSON.parse(readFileSync(g.file, "utf8")) as { head: Node };
      const short = (u: string): string => u.replace(/^file:\/\//, "").replace(`${g.root}/`, "").replace(/.*node_modules\//, "nm/");
      const self = new Map<string, number>();
      const src = new Map<string, number>();
      let total = 0;
      const walk = (n: Node, owner: string): void => {
        const url = short(n.callFrame.url);
        const key = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}:${n.callFrame.columnNumber + 1}`;
        const own = url.startsWith("src/") ? key : owner;
        self.set(key, (self.get(key) ?? 0) + n.selfSize);
        src.set(own, (src.get(own) ?? 0) + n.selfSize);
        total += n.selfSize;
        for (const c of n.children) walk(c, own);
      };
      walk(profile.head, "(outside src/)");
      const per = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Math.round(v / r.ok)]);
      const row = { round, mode, tree: g.name, ok: r.ok, failed: r.failed, bytesPerRequest: Math.round(total / r.ok), self: per(self), src: per(src) };
      results.push(row);
      console.log(`\n=== round ${round + 1} ${mode} ${g.name}: ${r.ok} ok, ${r.failed} failed; ≈ ${row.bytesPerRequest} bytes allocated per request (sampled)`);
      console.log("--- self bytes per request");
      for (const [k, v] of row.self) console.log(`${String(v).padStart(7)} ${k}`);
      console.log("--- charged to the nearest src/ frame");
      for (const [k, v] of row.src) console.log(`${String(v).padStart(7)} ${k}`);
    }
  }
}
writeFileSync(outJson, JSON.stringify(results, null, 1));
console.log("\n| mode | " + gws.map((g) => g.name).join(" | ") + " |");
for (const mode of modes) {
  console.log(`| ${mode} | ` + gws.map((g) => results.filter((x) => x.mode === mode && x.tree === g.name).map((x) => x.bytesPerRequest).join(", ")).join(" | ") + " |");
}
console.log(`(JSON: ${outJson})`);
await stopAll();
