/**
 * `npm run bench -- --quick`, the command issue 8 asks CI to run: it must
 * exit 0 (every stream it measured completed) and print its tables for
 * every door. No timing is judged here; the figures are for people. This
 * file runs the stream tables (fixed rates, highest rate, throughput,
 * memory); `bench-quick-cpu.test.ts` runs CPU per request and voice.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runQuickBench } from "./helpers/bench-quick.js";

describe("npm run bench -- --quick (streams)", () => {
  it("runs green and prints the stream tables for SSE, gRPC and WebSocket", async () => {
    const { stdout, results: r } = await runQuickBench("fixed,max,throughput,memory");
    for (const heading of ["## Time to first chunk at fixed rates", "## Highest sustained rate", "## Chunks relayed end to end", "## Memory per open stream"]) {
      assert.ok(stdout.includes(heading), `missing table: ${heading}`);
    }
    for (const door of ["sse", "grpc", "ws"]) {
      const fixed = r.fixedRates.find((x) => x.target === "spillway" && x.door === door);
      assert.ok(fixed && fixed.result.ok === fixed.result.started && fixed.result.ok > 0, `${door}: fixed-rate row missing or incomplete`);
      assert.ok((fixed.cpuUsPerStream ?? 0) > 0, `${door}: no CPU time per stream`);
      assert.ok((r.throughput.find((x) => x.target === "spillway" && x.door === door)?.chunksPerS ?? 0) > 0, `${door}: no chunks/s`);
      const mem = r.memory.find((x) => x.door === door);
      assert.ok(mem && mem.held === mem.streams && mem.kibPerStream !== undefined, `${door}: memory row missing or incomplete`);
    }
  });
});
