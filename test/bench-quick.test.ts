/**
 * `npm run bench -- --quick`, the command issue 8 asks CI to run: it must
 * exit 0 (every stream it measured completed) and print its tables for
 * every door. No timing is judged here; the figures are for people.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { nginxAvailable } from "../load/nginx.js";
import { ROOT } from "../load/procs.js";

describe("npm run bench -- --quick", () => {
  it("runs green and prints every table, for SSE, gRPC and WebSocket (text and voice), CPU per request included", { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "spillway-bench-quick-"));
    const child = spawn("npm", ["run", "bench", "--", "--quick", "--out", out], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    assert.equal(code, 0, `bench exited ${code}\n${stderr}`);
    for (const heading of [
      "## Time to first chunk at fixed rates",
      "## Highest sustained rate",
      "## Chunks relayed end to end",
      "## Memory per open stream",
      "## Voice turns through the realtime door",
      "## CPU per request",
    ]) {
      assert.ok(stdout.includes(heading), `missing table: ${heading}`);
    }
    const json = readdirSync(out).find((f) => f.startsWith("bench-quick-") && f.endsWith(".json"));
    assert.ok(json, "no JSON results written");
    const r = JSON.parse(readFileSync(join(out, json), "utf8")) as {
      fixedRates: Array<{ target: string; door: string; result: { ok: number; started: number }; cpuUsPerStream?: number }>;
      throughput: Array<{ target: string; door: string; chunksPerS: number }>;
      memory: Array<{ door: string; held: number; streams: number; kibPerStream?: number }>;
      voice: Array<{ turns: number; errors: number; firstAudio: { p50?: number } }>;
      cpu?: { rows: Array<{ mode: string; target: string; cpuUs?: number; mockCpuUs?: number; failed: number }> };
    };
    // CPU per request in turns (issue 16): every door of the gateway, the mock alone, and nginx's relay when installed.
    const cpu = r.cpu?.rows ?? [];
    const targets = ["direct", "spillway", ...(nginxAvailable() ? ["nginx"] : [])];
    for (const t of targets) {
      for (const mode of t === "spillway" ? ["json", "sse", "grpc", "ws"] : ["json", "sse"]) {
        const row = cpu.find((x) => x.target === t && x.mode === mode);
        assert.ok(row && (row.cpuUs ?? 0) > 0 && (row.mockCpuUs ?? 0) > 0 && row.failed === 0, `cpu ${mode}/${t}: row missing, failed or without CPU`);
      }
    }
    assert.match(stdout, /\| non-streamed chat \| [\d.]+ \|/, "the CPU table has a non-streamed row");
    // Realtime sessions streaming microphone audio: speech in, synthesized speech out.
    assert.ok(r.voice.length > 0 && r.voice.every((v) => v.turns > 0 && v.errors === 0 && (v.firstAudio.p50 ?? 0) > 0), "voice turns missing or failed");
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
