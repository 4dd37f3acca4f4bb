/**
 * `npm run bench -- --quick`, second half (see `bench-quick.test.ts`): CPU
 * per request in turns (issue 16) for every door of the gateway, the mock
 * alone and nginx's relay when installed, and realtime voice turns through
 * the fake providers (issue 17). It must exit 0 and print both tables; no
 * timing is judged.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nginxAvailable } from "../load/nginx.js";
import { runQuickBench } from "./helpers/bench-quick.js";

describe("npm run bench -- --quick (CPU per request, voice)", () => {
  it("runs green and prints the CPU and voice tables", async () => {
    const { stdout, results: r } = await runQuickBench("voice,cpu");
    for (const heading of ["## Voice turns through the realtime door", "## CPU per request"]) assert.ok(stdout.includes(heading), `missing table: ${heading}`);
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
  });
});
