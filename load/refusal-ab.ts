/**
 * `tsx load/refusal-ab.ts --trees DIR,DIR [--rounds N] [--seconds S] [--doors sse,grpc,ws] [--pin]`:
 * r = CPU per refusal / CPU per served stream, per door, for several trees
 * of Spillway in turns (the order flips every round), with the bench's own
 * measurement (`refusalCost` in load/overload.ts: a gateway whose stream cap
 * of 32 is filled with slow streams refuses a closed loop of 32, then serves
 * it once the slots are free; CPU time of the gateway process). CPU time is
 * the steady figure on a shared host; the rounds in turns are what make
 * trees comparable. Prints one line per round and tree, then the medians.
 */
import { availableParallelism, loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startTurnWorker } from "./cannon.js";
import { mockModel, type MockShape } from "./mock-upstream.js";
import { fillWith, refusalCost, type RefusalCostRow } from "./overload.js";
import { setPinning, startMock, startSpillway } from "./procs.js";
import { throughput, wsUrl, type Target } from "./scenarios.js";
import type { Door } from "./loadgen.js";

const { values } = parseArgs({
  options: {
    trees: { type: "string", default: "." },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "2" },
    doors: { type: "string", default: "sse,grpc,ws" },
    pin: { type: "boolean", default: false },
  },
});
if (values.pin) setPinning({ gateway: "0", others: availableParallelism() > 2 ? `1-${availableParallelism() - 1}` : "1" });
const RATE: MockShape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
const SLOW: MockShape = { chunks: 1000, bytes: 16, delayMs: 5000, firstMs: 0 };
const trees = values.trees.split(",").map((t) => resolve(t));
const doors = values.doors.split(",") as Door[];
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const profiles = Object.fromEntries([RATE, SLOW].map((s) => [`mock/rt-${mockModel(s)}`, mockModel(s)]));

function targets(name: string, http: number, grpc: number, pid: number | undefined, shape: MockShape): Target[] {
  const all: Target[] = [
    { name, door: "sse", url: `http://127.0.0.1:${http}`, model: (s) => `mock/${mockModel(s)}`, pid },
    { name, door: "grpc", url: `127.0.0.1:${grpc}`, model: (s) => `mock/${mockModel(s)}`, pid },
    { name, door: "ws", url: wsUrl(http, `mock/rt-${mockModel(shape)}`), model: (s) => `mock/rt-${mockModel(s)}`, pid },
  ];
  return all.filter((t) => doors.includes(t.door));
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`load average at start: ${load()}`);
const mock = await startMock();
const rows: Array<RefusalCostRow & { round: number }> = [];
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [...trees].reverse() : trees;
    for (const root of order) {
      const g = await startSpillway({ mockPort: mock.port, workers: 1, realtime: profiles, adaptive: true, maxConcurrentStreams: 32, root });
      const worker = startTurnWorker();
      try {
        const ts = targets(root, g.httpPort, g.grpcPort, g.child.pid, RATE);
        for (const t of ts) await throughput(t, 20, 1, RATE);
        const sse = targets(root, g.httpPort, g.grpcPort, g.child.pid, SLOW).find((t) => t.door === "sse") ?? targets(root, g.httpPort, g.grpcPort, g.child.pid, SLOW)[0]!;
        const got = await refusalCost(worker, ts, g.child.pid!, RATE, fillWith({ ...sse, door: "sse", url: `http://127.0.0.1:${g.httpPort}` }, SLOW, 32), 32, seconds, root);
        for (const r of got) {
          rows.push({ ...r, round });
          console.log(`round ${round + 1} ${root} ${r.door}: ${r.refusedUs?.toFixed(1)} µs/refusal (${r.refused}), ${r.servedUs?.toFixed(0)} µs/served (${r.served}), r ${r.ratio?.toFixed(3)} | load ${load()}`);
        }
      } finally {
        await worker.stop();
        await g.stop();
      }
    }
  }
} finally {
  await mock.stop();
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log(`\n| tree | door | µs / refusal (median; rounds) | µs / served | r (median; rounds) |\n| --- | --- | --- | --- | --- |`);
for (const root of trees) {
  for (const door of doors) {
    const mine = rows.filter((r) => r.tree === root && r.door === door);
    const ref = mine.map((r) => r.refusedUs ?? NaN);
    const srv = mine.map((r) => r.servedUs ?? NaN);
    const q = mine.map((r) => r.ratio ?? NaN);
    console.log(`| ${root} | ${door} | ${median(ref).toFixed(0)} (${ref.map((x) => x.toFixed(0)).join(", ")}) | ${median(srv).toFixed(0)} (${srv.map((x) => x.toFixed(0)).join(", ")}) | ${median(q).toFixed(3)} (${q.map((x) => x.toFixed(3)).join(", ")}) |`);
  }
}
console.log(`load average at end: ${load()}`);
