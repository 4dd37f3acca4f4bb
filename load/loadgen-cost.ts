/**
 * What the load generator itself costs: CPU µs per stream, late starts and
 * its own loop delay, per door and per client (`classic`: node:http, the
 * grpc-js generated client and `ws` as before; `lean`: load/clients/lean-*.ts),
 * at open-loop rates against one gateway with adaptive concurrency on (so a
 * rate past its capacity is mostly refusals, as in the overload steps).
 * Clients take turns at every rate, so host noise hits them alike.
 *
 * Run: `npx tsx load/loadgen-cost.ts [--rates 1500,6000] [--seconds 5] [--doors sse,grpc,ws] [--pin] [--rounds 1]`.
 */
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import type { ClientKind, Door } from "./loadgen.js";
import { mockModel, type MockShape } from "./mock-upstream.js";
import { runJob, setPinning, startMock, startSpillway } from "./procs.js";
import { wsUrl } from "./scenarios.js";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "1500,6000" },
    seconds: { type: "string", default: "5" },
    doors: { type: "string", default: "sse,grpc,ws" },
    clients: { type: "string", default: "classic,lean" },
    rounds: { type: "string", default: "1" },
    pin: { type: "boolean", default: false },
  },
});
if (values.pin) setPinning({ gateway: "0", others: availableParallelism() > 2 ? `1-${availableParallelism() - 1}` : "1" });

const SHAPE: MockShape = { chunks: 20, bytes: 16, delayMs: 10, firstMs: 0 };
const model = mockModel(SHAPE);
const seconds = Number(values.seconds);

async function main(): Promise<void> {
  process.stdout.write(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  const mock = await startMock();
  const g = await startSpillway({ mockPort: mock.port, workers: 1, realtime: { [`mock/rt-${model}`]: model }, adaptive: true });
  const target = (door: Door): string => (door === "sse" ? `http://127.0.0.1:${g.httpPort}` : door === "grpc" ? `127.0.0.1:${g.grpcPort}` : wsUrl(g.httpPort, `mock/rt-${model}`));
  const rows: string[] = ["| door | rate /s | client | started | served | refused | errors | lg CPU µs/stream | late starts | max late ms | lg loop p99 ms |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const door of values.doors.split(",") as Door[]) {
        for (const rate of values.rates.split(",").map(Number)) {
          const clients = values.clients.split(",") as ClientKind[];
          for (const client of round % 2 === 0 ? clients : [...clients].reverse()) {
            const r = await runJob({ door, target: target(door), model: door === "ws" ? "" : `mock/${model}`, expectChunks: SHAPE.chunks, mode: "rate", rate, seconds, drainMs: 10_000, fromSchedule: true, client });
            const us = r.started > 0 ? Math.round(((r.loadgenCpuMs ?? 0) * 1000) / r.started) : 0;
            const row = `| ${door} | ${rate} | ${client} | ${r.started} | ${r.ok} | ${r.refused ?? 0} | ${r.errors} | ${us} | ${Math.round((r.lateStarts / Math.max(1, r.started)) * 100)}% | ${r.maxLateMs ?? "–"} | ${r.loadgenDelay?.p99 ?? "–"} |`;
            rows.push(row);
            process.stdout.write(`${row}${r.errorSamples.length ? `  errors: ${r.errorSamples.slice(0, 2).join("; ")}` : ""}\n`);
            if (g.child.exitCode !== null || g.child.signalCode !== null) throw new Error(`the gateway exited (${g.child.exitCode ?? g.child.signalCode})`);
            await new Promise((res) => setTimeout(res, 1500));
          }
        }
      }
    }
  } finally {
    await g.stop();
    await mock.stop();
  }
  process.stdout.write(`\n${rows.join("\n")}\n\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
