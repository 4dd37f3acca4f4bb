/**
 * What Node can do for a streamed relay (issue 16): the node-floor's upstream
 * clients (load/node-floor.ts `--client request|dispatch|dispatch-nt|net`)
 * side by side with nginx and Spillway, in turns (load/cpu.ts): CPU µs per
 * streamed chat request (22 events 1 ms apart) and per paced chunk
 * ((200-chunk − 2-chunk) / 198, events 1 ms apart). Prints one line per
 * target.
 *
 * Run: `tsx load/floor-variants.ts [--rounds 3] [--seconds 3] [--clients request,dispatch,net] [--no-spillway] [--compare DIR]`.
 */
import { parseArgs } from "node:util";
import { startTurnWorker } from "./cannon.js";
import { cpuPerRequest, LONG_SHAPE, perChunkUs, SHORT_SHAPE, STREAM_SHAPE, type CpuMode, type CpuTarget } from "./cpu.js";
import { mockModel } from "./mock-upstream.js";
import { nginxAvailable, startNginx } from "./nginx.js";
import { spawnNodeFloor, type FloorClient } from "./node-floor.js";
import { startMock, startSpillway, type Proc } from "./procs.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    clients: { type: "string", default: "request,dispatch,dispatch-nt,net" },
    "no-spillway": { type: "boolean", default: false },
    compare: { type: "string", multiple: true, default: [] },
  },
});

const procs: Proc[] = [];
const worker = startTurnWorker();
try {
  const mock = await startMock();
  procs.push(mock);
  const targets: CpuTarget[] = [];
  if (nginxAvailable()) {
    const n = await startNginx(mock.port);
    procs.push(n);
    targets.push({ name: "nginx", pid: n.child.pid!, http: `http://127.0.0.1:${n.port}`, model: mockModel });
  }
  for (const c of values.clients.split(",").filter(Boolean) as FloorClient[]) {
    const f = await spawnNodeFloor(mock.port, c);
    procs.push(f);
    targets.push({ name: `floor-${c}`, pid: f.child.pid!, http: `http://127.0.0.1:${f.port}`, model: mockModel });
  }
  const trees: Array<[string, string | undefined]> = values["no-spillway"] ? [] : [["spillway", undefined]];
  for (const dir of values.compare) trees.push([`spillway@${dir.replace(/\/+$/, "").split("/").pop()}`, dir]);
  for (const [name, root] of trees) {
    const gw = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, ...(root ? { root } : {}) });
    procs.push(gw);
    targets.push({ name, pid: gw.child.pid!, http: `http://127.0.0.1:${gw.httpPort}`, model: (s) => `mock/${mockModel(s)}` });
  }
  // Warm every target up (JIT) before the measured turns.
  for (const t of targets) await worker.run({ kind: "cannon", job: { origin: t.http, model: t.model(STREAM_SHAPE), stream: true, expectChunks: STREAM_SHAPE.chunks, connections: 20, seconds: 2 } });
  const modes: CpuMode[] = [
    { id: "sse", door: "sse", shape: STREAM_SHAPE },
    { id: "sse-c2", door: "sse", shape: SHORT_SHAPE },
    { id: "sse-c200", door: "sse", shape: LONG_SHAPE },
  ];
  const rows = await cpuPerRequest(worker, targets, modes, mock.child.pid!, { rounds: Number(values.rounds), seconds: Number(values.seconds), connections: 32 });
  const nginx = rows.find((r) => r.mode === "sse" && r.target === "nginx")?.cpuUs;
  const nginxChunk = perChunkUs(rows, "sse", "nginx");
  for (const t of targets) {
    const s = rows.find((r) => r.mode === "sse" && r.target === t.name);
    const pc = perChunkUs(rows, "sse", t.name);
    const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : "–");
    const range = s ? `[${s.samples.map((x) => x.cpuUs.toFixed(0)).join(" ")}]` : "";
    process.stdout.write(`${t.name.padEnd(22)} stream ${s?.cpuUs?.toFixed(1) ?? "–"} µs ${range} (${ratio(s?.cpuUs, nginx)} nginx)  per paced chunk ${pc?.toFixed(2) ?? "–"} µs (${ratio(pc, nginxChunk)} nginx)  failed ${s?.failed ?? "–"}\n`);
  }
} finally {
  await worker.stop();
  await Promise.all(procs.map((p) => p.stop()));
}
