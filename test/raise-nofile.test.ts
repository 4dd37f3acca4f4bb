/**
 * Node raises its soft open-file limit to the hard one at start (its
 * PlatformInit), so a host's soft default of 1,024 with a higher hard limit
 * does not run the gateway out of descriptors at a few hundred streams; the
 * realtime session and stream caps derived from the limit (engine/limits/descriptor-budget.ts)
 * therefore follows the hard limit, in the primary and in every worker.
 * Real processes under a real `prlimit`; this pins the behaviour the docs
 * state, so a runtime that stopped doing it would fail here.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultConcurrentStreams, defaultRealtimeSessions, parseProcLimits } from "../src/engine/limits/descriptor-budget.js";
import { startGatewayProcess, type GatewayProcess } from "./helpers/gateway-process.js";
import { until } from "./helpers/saturate.js";

const skip = existsSync("/usr/bin/prlimit") ? false : "prlimit (util-linux) missing";

// Under --workers N the primary serves the workers' metrics on their own port; one process serves them on its HTTP port.
const yaml = (workers: number): string =>
  ["http: { host: 127.0.0.1, port: 0 }", "grpc: { host: 127.0.0.1, port: 0 }", "shutdown: { graceMs: 500 }", workers > 1 ? "metrics: { host: 127.0.0.1, port: 0 }" : "", ""].join("\n");

function softLimitOf(pid: number): number | undefined {
  return parseProcLimits(readFileSync(`/proc/${pid}/limits`, "utf8"));
}

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

async function limits(g: GatewayProcess, name: string): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${g.metrics ?? g.http}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))].map((m) => Number(m[1]));
}

describe("open-file limit: soft raised to hard at start", { skip }, () => {
  for (const workers of [1, 2]) {
    it(`--workers ${workers}: every process runs at the hard limit and derives its session and stream caps from it`, async () => {
      const g = await startGatewayProcess(yaml(workers), workers, ["prlimit", "--nofile=300:4096", "--"]);
      try {
        assert.equal(softLimitOf(g.child.pid!), 4096);
        if (workers > 1) {
          let pids: number[] = [];
          await until(async () => (pids = childrenOf(g.child.pid!)).length >= workers, "workers forked");
          for (const w of pids) assert.equal(softLimitOf(w), 4096, `worker ${w}`);
        }
        assert.deepEqual(await limits(g, "spillway_realtime_session_limit"), Array.from({ length: workers }, () => defaultRealtimeSessions(4096)));
        assert.deepEqual(await limits(g, "spillway_stream_limit"), Array.from({ length: workers }, () => defaultConcurrentStreams(4096)), "the stream cap too");
      } finally {
        g.child.kill("SIGTERM");
        await g.exit;
      }
    });
  }
});
