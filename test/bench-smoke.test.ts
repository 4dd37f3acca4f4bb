/**
 * Smoke test of the benchmark harness (load/): the mock upstream, a real
 * gateway process and the load generator work together for every door, and
 * the k6 scripts parse as JavaScript modules (k6 itself is not installed
 * here, so they are not run). Nothing here asserts a timing: only that
 * streams complete and the numbers are there.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { completeBody, startTurnWorker } from "../load/cannon.js";
import { cpuPerRequest, perChunkUs, type CpuRow } from "../load/cpu.js";
import { cpuMarkdown } from "../load/cpu-report.js";
import { mockModel } from "../load/mock-upstream.js";
import { nginxAvailable, nginxConfig, startNginx } from "../load/nginx.js";
import { cpuTree, holdStreams, ROOT, runJob, startMock, startSpillway, type Proc } from "../load/procs.js";
import { job, memory, wsUrl, type MemorySettle, type Target } from "../load/scenarios.js";

const SHAPE = { chunks: 5, bytes: 8, delayMs: 2, firstMs: 0 };
const SLOW = { chunks: 100, bytes: 8, delayMs: 3000, firstMs: 0 };
/** Memory rows are checked for being there, not for their figures: no settling between the readings. */
const NO_SETTLE: MemorySettle = { beforeMs: 0, heldMs: 0, sampleMs: 0, afterMs: 0 };

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
      // The probe rewrites the file every second: wait for a write made after the last request ended.
      const ended = Date.now();
      while (!existsSync(file) || statSync(file).mtimeMs < ended) await new Promise((res) => setTimeout(res, 50));
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
      const row = await memory(t, gw.child.pid!, 30, 1, SLOW, NO_SETTLE);
      assert.equal(row.held, 30, `${t.door}: ${row.errorSamples.join("; ")}`);
      assert.ok(row.rssHeldMiB > 0 && row.kibPerStream !== undefined);
    }
  });
});

describe("CPU per request (issue 16)", () => {
  let mock: Proc & { port: number };
  let gw: Proc & { httpPort: number; grpcPort: number };

  before(async () => {
    mock = await startMock();
    gw = await startSpillway({ mockPort: mock.port, workers: 1, realtime: { [`mock/rt-${mockModel(SHAPE)}`]: mockModel(SHAPE) } });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  it("measures each target in turns: CPU per request of the target and of the fake upstream, every door of a gateway", async () => {
    const worker = startTurnWorker();
    try {
      const rows = await cpuPerRequest(
        worker,
        [
          { name: "direct", pid: mock.child.pid!, http: `http://127.0.0.1:${mock.port}`, model: mockModel },
          { name: "spillway", pid: gw.child.pid!, http: `http://127.0.0.1:${gw.httpPort}`, grpc: `127.0.0.1:${gw.grpcPort}`, wsPort: gw.httpPort, model: (s) => `mock/${mockModel(s)}`, realtimeModel: (s) => `mock/rt-${mockModel(s)}` },
        ],
        [
          { id: "json", door: "json", shape: SHAPE },
          { id: "sse", door: "sse", shape: SHAPE },
          { id: "grpc", door: "grpc", shape: SHAPE },
          { id: "ws", door: "ws", shape: SHAPE },
        ],
        mock.child.pid!,
        { rounds: 1, seconds: 1, connections: 4 },
      );
      const got = rows.map((r) => `${r.mode}/${r.target}`).sort();
      // gRPC and realtime only where there is such a door.
      assert.deepEqual(got, ["grpc/spillway", "json/direct", "json/spillway", "sse/direct", "sse/spillway", "ws/spillway"]);
      for (const r of rows) {
        assert.equal(r.failed, 0, `${r.mode}/${r.target}: ${r.errorSamples.join("; ")}`);
        assert.equal(r.samples.length, 1);
        assert.ok(r.samples[0]!.ok > 0 && (r.cpuUs ?? 0) > 0, `${r.mode}/${r.target}: no CPU per request`);
        // Every request through the gateway reached the upstream, which spent CPU on it.
        assert.ok((r.mockCpuUs ?? 0) > 0, `${r.mode}/${r.target}: no upstream CPU`);
      }
    } finally {
      await worker.stop();
    }
  });

  it("nginx relays the mock's answers, streamed and whole, and its CPU (master + worker) is read", { skip: !nginxAvailable() && "nginx is not installed" }, async () => {
    const ng = await startNginx(mock.port);
    const worker = startTurnWorker();
    try {
      const c0 = cpuTree(ng.child.pid!);
      for (const stream of [false, true]) {
        const r = await worker.run({ kind: "cannon", job: { origin: `http://127.0.0.1:${ng.port}`, model: mockModel(SHAPE), stream, expectChunks: SHAPE.chunks, connections: 4, seconds: 1 } });
        assert.ok(r.ok > 0, `stream=${stream}: nothing relayed`);
        assert.equal(r.failed, 0, `stream=${stream}: ${r.failed} failed`);
      }
      assert.ok(cpuTree(ng.child.pid!) > c0, "no CPU time counted for nginx");
    } finally {
      await worker.stop();
      await ng.stop();
    }
    assert.notEqual(ng.child.exitCode ?? ng.child.signalCode, null, "nginx stopped");
  });

  it("the nginx config relays without buffering over a keep-alive upstream", () => {
    const c = nginxConfig("/tmp/x", 8080, 9090);
    assert.match(c, /proxy_buffering off;/);
    assert.match(c, /keepalive \d+;/);
    assert.match(c, /server 127\.0\.0\.1:9090;/);
    assert.match(c, /listen 127\.0\.0\.1:8080/);
    assert.match(c, /access_log off;/);
  });

  it("counts a request only when its answer was whole", () => {
    const event = (c: string): string => `data: {"choices":[{"delta":{"content":"${c}"}}]}\n\n`;
    const full = event("xx").repeat(5) + "data: [DONE]\n\n";
    assert.equal(completeBody({ stream: true, expectChunks: 5 }, full), true);
    assert.equal(completeBody({ stream: true, expectChunks: 5 }, event("xx").repeat(4) + "data: [DONE]\n\n"), false, "a chunk short");
    assert.equal(completeBody({ stream: true, expectChunks: 5 }, event("xx").repeat(5)), false, "no [DONE]");
    assert.equal(completeBody({ stream: false, expectChunks: 5 }, '{"choices":[{"finish_reason":"stop"}],"usage":{}}'), true);
    assert.equal(completeBody({ stream: false, expectChunks: 5 }, '{"error":{}}'), false);
  });

  it("prints the table with before/after, nginx and Portkey ratios, per-chunk costs and the aims", () => {
    const row = (mode: string, target: string, cpuUs: number, chunks = 20): CpuRow => ({
      mode,
      door: mode.startsWith("grpc") ? "grpc" : mode === "json" ? "json" : "sse",
      target,
      chunks,
      samples: [{ round: 0, ok: 100, failed: 0, requestsPerS: 100, cpuUs, mockCpuUs: 10 }],
      cpuUs,
      mockCpuUs: 10,
      requestsPerS: 100,
      failed: 0,
      errorSamples: [],
    });
    const rows = [
      row("json", "nginx", 20),
      row("json", "spillway@old", 200),
      row("json", "spillway", 60),
      row("json", "portkey", 900),
      row("sse", "nginx", 100),
      row("sse", "spillway", 140),
      row("sse-c2", "spillway", 100, 2),
      row("sse-c200", "spillway", 1090, 200),
      row("grpc-c2", "spillway", 100, 2),
      row("grpc-c200", "spillway", 2080, 200),
    ];
    assert.equal(perChunkUs(rows, "sse", "spillway"), 5);
    assert.equal(perChunkUs(rows, "grpc", "spillway"), 10);
    const md = cpuMarkdown({ plan: { rounds: 1, seconds: 1, connections: 32 }, rows, notes: [] });
    assert.match(md, /\| mode \| nginx relay \| spillway@old \| spillway \(this tree\) \| portkey \| this tree \/ spillway@old \| spillway@old \/ nginx \| spillway \/ nginx \| portkey \/ spillway \|/);
    assert.match(md, /\| non-streamed chat \| 20\.0 \| 200 \| 60\.0 \| 900 \| 0\.30× \| 10\.00× \| 3\.00× \| 15\.00× \|/);
    assert.match(md, /non-streamed chat, spillway \/ nginx: 3\.00× — \*\*met\*\*/);
    assert.match(md, /non-streamed chat, spillway \/ portkey: 1\/15\.0 — \*\*met\*\*/);
    assert.match(md, /streamed chat \(22 events\), spillway \/ nginx: 1\.40× — \*\*met\*\*/);
    assert.match(md, /gRPC per chunk \/ SSE per chunk \(spillway, events 1 ms apart\): 2\.00× — \*\*missed\*\*/);
    assert.match(md, /\| per chunk: SSE \(events 1 ms apart\) \| – \| – \| 5\.0 \|/);
  });
});

describe("refusals (adaptive concurrency, the stream cap) are counted apart from failures", () => {
  let mock: Proc & { port: number };
  let gw: Proc & { httpPort: number; grpcPort: number };

  before(async () => {
    mock = await startMock();
    // The hard cap makes refusals certain without timing: two slow streams fill it.
    gw = await startSpillway({ mockPort: mock.port, workers: 1, maxConcurrentStreams: 2, realtime: { "mock/rt-fast": mockModel(SHAPE) } });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  const targets = (): Target[] => [
    { name: "spillway", door: "sse", url: `http://127.0.0.1:${gw.httpPort}`, model: (s) => `mock/${mockModel(s)}` },
    { name: "spillway", door: "grpc", url: `127.0.0.1:${gw.grpcPort}`, model: (s) => `mock/${mockModel(s)}` },
    { name: "spillway", door: "ws", url: wsUrl(gw.httpPort, "mock/rt-fast"), model: () => "", fromSchedule: true },
  ];

  it("on every door: refused while the gateway is full (503 + Retry-After, UNAVAILABLE, server_overloaded), served after", async () => {
    const sse = targets()[0]!;
    const h = await holdStreams(job(sse, SLOW, { mode: "hold", count: 2 }));
    try {
      assert.equal(h.held, 2, h.errorSamples.join("; "));
      for (const t of targets()) {
        const r = await runJob(job(t, SHAPE, { mode: "rate", rate: 20, seconds: 1 }));
        assert.equal(r.refused, 20, `${t.door}: ${r.errorSamples.join("; ")}`);
        assert.equal(r.errors, 0, `${t.door}: a refusal counted as a failure`);
        assert.equal(r.ok, 0);
        assert.equal(r.refusal?.n, 20, `${t.door}: every refusal timed`);
        assert.ok((r.refusal?.p50 ?? -1) >= 0);
      }
    } finally {
      await h.release();
    }
    // 5 streams 200 ms apart: never more than the cap of 2 at once.
    for (const t of targets()) {
      const r = await runJob(job(t, SHAPE, { mode: "rate", rate: 5, seconds: 1 }));
      assert.equal(r.ok, 5, `${t.door} after: ${r.refused} refused, ${r.errorSamples.join("; ")}`);
      assert.equal(r.refused, 0);
    }
  });

  it("a failure that is not a refusal is an error (an unknown model: 404)", async () => {
    const r = await runJob({ door: "sse", target: `http://127.0.0.1:${gw.httpPort}`, model: "nope/none", expectChunks: 1, mode: "rate", rate: 10, seconds: 1 });
    assert.equal(r.errors, 10, r.errorSamples.join("; "));
    assert.equal(r.refused, 0);
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
