/**
 * Metrics an attacker cannot grow, and one /metrics for the whole gateway:
 * client-chosen model names past a bound fold into `other`; `/metrics`
 * behind a key or on a port of its own; with `--workers 2` every scrape
 * shows the same totals (summed over workers), never decreasing.
 */
import assert from "node:assert/strict";
import { get, request } from "node:http";
import { after, before, describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startFakeOpenAi, chatEvents, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { startGatewayProcess } from "./helpers/gateway-process.js";
import { postJson } from "./helpers/sse.js";

interface Family {
  name: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string }>;
}

function families(text: string): Family[] {
  return parsePrometheusTextFormat(text) as Family[];
}

/** GET on a new connection (no keep-alive), so with several workers any of them may answer. */
function fresh(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path, agent: false, headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

/** POST JSON on a new connection, so requests spread over the workers. */
function freshPost(port: number, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST", agent: false, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("bounded metric labels", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeOpenAi(() => ({ events: chatEvents(["ok"]) }));
    gw = await startTestGateway({
      providers: { openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-up" } },
      aliases: { fast: "openai/gpt-configured" },
      metrics: { maxModelLabels: 20 },
    });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it("10,000 requests with distinct client-chosen model names leave the series bounded", async () => {
    const total = 10_000;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: `openai/m${i}`, messages: [{ role: "user", content: "x" }] });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const configured = await postJson(`${gw.baseUrl}/chat/completions`, { model: "fast", messages: [{ role: "user", content: "x" }] });
    assert.equal(configured.status, 200);
    await configured.arrayBuffer();
    const text = await (await fetch(`${gw.origin}/metrics`)).text();
    const requests = families(text).find((f) => f.name === "spillway_requests_total")!;
    const models = new Set(requests.metrics.map((m) => m.labels?.["model"]));
    assert.ok(models.size <= 20 + 2, `model label values: ${models.size}`);
    assert.ok(models.has("other"), "past the bound, names fold into 'other'");
    assert.ok(models.has("openai/gpt-configured"), "a configured model keeps its name whatever came before");
    const counted = requests.metrics.reduce((n, m) => n + Number(m.value), 0);
    assert.equal(counted, total + 1, "nothing is lost by folding");
  });
});

describe("/metrics behind a key, or on a port of its own", () => {
  it("with metrics.key, /metrics needs the key", async () => {
    const gw = await startTestGateway({ metrics: { key: "metrics-secret-1" } });
    try {
      assert.equal((await fetch(`${gw.origin}/metrics`)).status, 401);
      const ok = await fetch(`${gw.origin}/metrics`, { headers: { authorization: "Bearer metrics-secret-1" } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /spillway_requests_total|spillway_process_cpu/);
    } finally {
      await gw.close();
    }
  });

  it("with metrics.port, /metrics moves there (and is gone from the HTTP port)", async () => {
    const gw = await startTestGateway({ metrics: { port: 0, host: "127.0.0.1" } });
    try {
      assert.equal((await fetch(`${gw.origin}/metrics`)).status, 404);
      const r = await fresh(gw.gateway.metricsPort!, "/metrics");
      assert.equal(r.status, 200);
      assert.match(r.body, /spillway_active_streams/);
    } finally {
      await gw.close();
    }
  });
});

describe("one /metrics for --workers 2", () => {
  it("20 scrapes after a known number of requests show the same total; counters never decrease", async () => {
    const gw = await startGatewayProcess(
      "http: { host: 127.0.0.1, port: 0 }\ngrpc: { host: 127.0.0.1, port: 0 }\nproviders: { local: { type: local, tokenDelayMs: 0 } }\n",
      2,
    );
    try {
      const n = 40;
      for (let i = 0; i < n; i++) {
        const r = await freshPost(gw.http, "/v1/chat/completions", { model: "local/echo", messages: [{ role: "user", content: "count me" }] });
        assert.equal(r, 200);
      }
      const totals: number[] = [];
      const workers = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await fresh(gw.http, "/metrics");
        assert.equal(r.status, 200);
        const fams = families(r.body);
        const req = fams.find((f) => f.name === "spillway_requests_total");
        totals.push(req ? req.metrics.filter((m) => m.labels?.["route"] === "/v1/chat/completions").reduce((s, m) => s + Number(m.value), 0) : 0);
        for (const m of fams.find((f) => f.name === "spillway_nodejs_heap_size_used_bytes")?.metrics ?? []) workers.add(m.labels?.["worker"] ?? "");
      }
      assert.deepEqual(new Set(totals), new Set([n]), `totals seen: ${totals.join(",")}`);
      assert.equal(workers.size, 2, "process metrics stay per worker, labelled by worker");
    } finally {
      gw.child.kill("SIGKILL");
    }
  });
});
