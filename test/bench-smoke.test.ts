/**
 * Smoke test of the benchmark harness (load/): the mock upstream, a real
 * gateway process and the load generator work together for every door, and
 * the k6 scripts parse as JavaScript modules (k6 itself is not installed
 * here, so they are not run). Nothing here asserts a timing: only that
 * streams complete and the numbers are there.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mockModel } from "../load/mock-upstream.js";
import { cpuTree, ROOT, runJob, startMock, startSpillway, type Proc } from "../load/procs.js";
import { memory, wsUrl, type Target } from "../load/scenarios.js";

const SHAPE = { chunks: 5, bytes: 8, delayMs: 2, firstMs: 0 };
const SLOW = { chunks: 100, bytes: 8, delayMs: 3000, firstMs: 0 };

describe("benchmark harness", () => {
  let mock: Proc & { port: number };
  let gw: Proc & { httpPort: number; grpcPort: number };

  before(async () => {
    mock = await startMock();
    gw = await startSpillway({
      mockPort: mock.port,
      workers: 1,
      realtime: { "mock/rt-fast": mockModel(SHAPE), "mock/rt-slow": mockModel(SLOW) },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  const model = `mock/${mockModel(SHAPE)}`;
  const jobs = () =>
    [
      { door: "sse", target: `http://127.0.0.1:${mock.port}`, model: mockModel(SHAPE) },
      { door: "sse", target: `http://127.0.0.1:${gw.httpPort}`, model },
      { door: "json", target: `http://127.0.0.1:${gw.httpPort}`, model },
      { door: "grpc", target: `127.0.0.1:${gw.grpcPort}`, model },
      { door: "ws", target: wsUrl(gw.httpPort, "mock/rt-fast"), model: "" },
    ] as const;

  it("streams at a fixed rate through every door, each stream complete", async () => {
    for (const j of jobs()) {
      const r = await runJob({ ...j, expectChunks: j.door === "json" ? 1 : SHAPE.chunks, mode: "rate", rate: 40, seconds: 1 });
      assert.equal(r.errors, 0, `${j.door} ${j.target}: ${r.errorSamples.join("; ")}`);
      assert.equal(r.ok, 40, `${j.door}: every stream completed`);
      assert.equal(r.ttft.n, 40);
      assert.ok(r.ttft.p50! > 0 && r.ttft.p99! >= r.ttft.p50!);
      if (j.door !== "json") assert.equal(r.chunks, 40 * SHAPE.chunks, `${j.door}: every chunk counted`);
    }
  });

  it("reads the gateway's CPU time, which grows with the streams it serves", async () => {
    const before = cpuTree(gw.child.pid!);
    const r = await runJob({ door: "sse", target: `http://127.0.0.1:${gw.httpPort}`, model, expectChunks: SHAPE.chunks, mode: "rate", rate: 200, seconds: 1 });
    assert.equal(r.ok, 200);
    assert.ok(cpuTree(gw.child.pid!) > before, "no CPU time counted for 200 streams");
  });

  it("the phase probe (SPILLWAY_PHASE_TRACE) stamps every phase of a streamed request, in order", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "spillway-phases-")), "phases.json");
    const traced = await startSpillway({ mockPort: mock.port, workers: 1, realtime: {}, env: { SPILLWAY_PHASE_TRACE: file } });
    try {
      const r = await runJob({ door: "sse", target: `http://127.0.0.1:${traced.httpPort}`, model, expectChunks: SHAPE.chunks, mode: "rate", rate: 20, seconds: 1 });
      assert.equal(r.ok, 20);
      await new Promise((res) => setTimeout(res, 1500));
      const t = JSON.parse(readFileSync(file, "utf8")) as { requests: number; gaps: Array<{ from: string; to: string; p50Ms: number }>; totalP50Ms: number };
      assert.ok(t.requests >= 10, `only ${t.requests} of 20 requests fully stamped`);
      assert.equal(t.gaps.length, 8);
      assert.deepEqual(t.gaps.map((g) => g.to).slice(-1), ["first bytes flushed"]);
      for (const g of t.gaps) assert.ok(Number.isFinite(g.p50Ms) && g.p50Ms >= 0, `${g.from} → ${g.to}: ${g.p50Ms}`);
      assert.ok(t.totalP50Ms > 0);
    } finally {
      await traced.stop();
    }
  });

  it("holds slow streams open and measures the gateway's memory", async () => {
    const targets: Target[] = [
      { name: "spillway", door: "sse", url: `http://127.0.0.1:${gw.httpPort}`, model: (s) => `mock/${mockModel(s)}` },
      { name: "spillway", door: "grpc", url: `127.0.0.1:${gw.grpcPort}`, model: (s) => `mock/${mockModel(s)}` },
      { name: "spillway", door: "ws", url: wsUrl(gw.httpPort, "mock/rt-slow"), model: () => "" },
    ];
    for (const t of targets) {
      const row = await memory(t, gw.child.pid!, 30, 1, SLOW);
      assert.equal(row.held, 30, `${t.door}: ${row.errorSamples.join("; ")}`);
      assert.ok(row.rssHeldMiB > 0 && row.kibPerStream !== undefined);
    }
  });
});

describe("k6 scripts", () => {
  const scripts = readdirSync(join(ROOT, "load")).filter((f) => /^k6-.*\.js$/.test(f));

  it("exist for chat SSE, realtime WebSocket and gRPC streaming", () => {
    assert.deepEqual(scripts.sort(), ["k6-chat-sse.js", "k6-grpc-stream.js", "k6-realtime-ws.js"]);
  });

  it("parse as JavaScript modules, import only k6 modules, and set thresholds", () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-k6-"));
    for (const f of scripts) {
      const src = readFileSync(join(ROOT, "load", f), "utf8");
      const copy = join(dir, f.replace(/\.js$/, ".mjs"));
      copyFileSync(join(ROOT, "load", f), copy);
      // Parses (does not run or resolve imports): a syntax error fails here.
      execFileSync(process.execPath, ["--check", copy]);
      const imports = [...src.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!);
      assert.ok(imports.length > 0 && imports.every((i) => i === "k6" || i.startsWith("k6/")), `${f}: ${imports.join(", ")}`);
      assert.match(src, /thresholds:\s*\{/, `${f} sets thresholds`);
      assert.match(src, /export default/, `${f} has a default function`);
    }
  });
});
