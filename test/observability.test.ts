/**
 * Metrics and logs: /metrics parses as Prometheus text and its counters and
 * histograms move by the right amounts after traffic; every finished request
 * logs one JSON line with the fields operators need, and never a key.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { pino } from "pino";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { Metadata } from "@grpc/grpc-js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";
import { postJson } from "./helpers/sse.js";

type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }> };

/** Captures log lines as parsed JSON. */
function captureLogs(): { logger: pino.Logger; lines: any[] } {
  const lines: any[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: "info" }, dest), lines };
}

describe("observability", () => {
  let gw: TestGateway;
  let fake: FakeUpstream;
  const logs = captureLogs();
  before(async () => {
    fake = await startFakeOpenAi(() => ({ events: chatEvents(["a", "b", "c"], [4, 3]) }));
    gw = await startTestGateway(
      {
        providers: { up: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream-secret" }, broken: { type: "openai", baseUrl: "http://127.0.0.1:9/v1" } },
        routing: { maxAttempts: 2, baseDelayMs: 1, fallbacks: { "broken/m": ["local/echo"] } },
        auth: { keys: [{ key: "sk-gateway-secret-1", name: "team-a" }] },
      },
      { logger: logs.logger },
    );
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  const auth = { headers: { authorization: "Bearer sk-gateway-secret-1" } };

  /** Scrapes /metrics: checks it parses as Prometheus text, returns the families and the raw samples. */
  async function scrape(): Promise<{ families: Map<string, Family>; samples: string[] }> {
    const res = await fetch(`${gw.origin}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const text = await res.text();
    const families = parsePrometheusTextFormat(text) as Family[];
    assert.ok(families.length > 10);
    return { families: new Map(families.map((f) => [f.name, f])), samples: text.split("\n").filter((l) => l && !l.startsWith("#")) };
  }

  /**
   * The value of a sample (a histogram's `_count`) whose labels include
   * `labels`, read from the exposition lines (the parser drops histogram
   * labels).
   */
  function value(m: { families: Map<string, Family>; samples: string[] }, name: string, labels: Record<string, string>): number {
    const sample = m.families.get(name)?.type === "HISTOGRAM" ? `${name}_count` : name;
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = m.samples.find((l) => l.startsWith(`${sample}{`) && want.every((w) => l.includes(w)));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  }

  it("moves request, token, chunk, TTFT and duration metrics by the right amounts", async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) {
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "up/m", messages: [{ role: "user", content: "x" }], stream: true }, auth);
      await res.text();
    }
    const bad = await postJson(`${gw.baseUrl}/chat/completions`, { model: "nosuch/m", messages: [{ role: "user", content: "x" }] }, auth);
    assert.equal(bad.status, 404);
    const after = await scrape();
    const ok = { door: "http", route: "/v1/chat/completions", model: "up/m", provider: "up", outcome: "ok", status: "200" };
    assert.equal(value(after, "spillway_requests_total", ok) - value(before, "spillway_requests_total", ok), 3);
    const nf = { door: "http", route: "/v1/chat/completions", outcome: "client_error", status: "404" };
    assert.equal(value(after, "spillway_requests_total", nf) - value(before, "spillway_requests_total", nf), 1);
    const out = { direction: "out", provider: "up" };
    assert.equal(value(after, "spillway_tokens_total", out) - value(before, "spillway_tokens_total", out), 9);
    const inn = { direction: "in", provider: "up" };
    assert.equal(value(after, "spillway_tokens_total", inn) - value(before, "spillway_tokens_total", inn), 12);
    const route = { door: "http", route: "/v1/chat/completions" };
    // 3 text chunks + usage + finish per stream.
    assert.equal(value(after, "spillway_chunks_out_total", route) - value(before, "spillway_chunks_out_total", route), 15);
    assert.ok(value(after, "spillway_bytes_out_total", route) > value(before, "spillway_bytes_out_total", route));
    const hist = { door: "http", route: "/v1/chat/completions", provider: "up" };
    assert.equal(value(after, "spillway_time_to_first_chunk_seconds", hist) - value(before, "spillway_time_to_first_chunk_seconds", hist), 3);
    assert.equal(value(after, "spillway_stream_duration_seconds", hist) - value(before, "spillway_stream_duration_seconds", hist), 3);
    assert.equal(after.families.get("spillway_time_to_first_chunk_seconds")?.type, "HISTOGRAM");
    assert.ok(after.families.has("spillway_process_resident_memory_bytes"), "process metrics are exported");
  });

  it("counts upstream errors, retries and fallbacks", async () => {
    const before = await scrape();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "broken/m", messages: [{ role: "user", content: "x" }] }, auth);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-spillway-provider"), "local");
    const after = await scrape();
    const d = (name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels);
    assert.equal(d("spillway_upstream_errors_total", { provider: "broken", code: "Unavailable" }), 2);
    assert.equal(d("spillway_retries_total", { provider: "broken" }), 1);
    assert.equal(d("spillway_fallbacks_total", { from: "broken/m", to: "local/echo" }), 1);
  });

  it("logs one JSON line per request with id, door, route, model, provider, status, TTFT, duration, tokens, disconnect", async () => {
    logs.lines.length = 0;
    const res = await postJson(
      `${gw.baseUrl}/chat/completions`,
      { model: "up/m", messages: [{ role: "user", content: "my secret prompt" }], stream: true },
      { headers: { ...auth.headers, "x-request-id": "trace-42" } },
    );
    await res.text();
    const line = logs.lines.find((l) => l.requestId === "trace-42");
    assert.ok(line, "a line for the request");
    for (const field of ["requestId", "door", "route", "model", "provider", "status", "ttftMs", "durationMs", "inputTokens", "outputTokens", "clientDisconnected"]) {
      assert.ok(field in line, `log line has ${field}`);
    }
    assert.equal(line.door, "http");
    assert.equal(line.status, 200);
    assert.equal(line.provider, "up");
    assert.equal(line.outputTokens, 3);
    assert.equal(line.clientDisconnected, false);
    const all = JSON.stringify(logs.lines);
    assert.ok(!all.includes("sk-gateway-secret-1"), "the gateway key is never logged");
    assert.ok(!all.includes("sk-upstream-secret"), "the upstream key is never logged");
    assert.ok(!/authorization/i.test(all), "no Authorization header in logs");
    assert.ok(!all.includes("my secret prompt"), "prompt text is not logged");
  });

  it("logs a client that disconnects mid-stream", async () => {
    logs.lines.length = 0;
    fake.script = () => ({ events: chatEvents(Array.from({ length: 100 }, (_, i) => `t${i}`)), delayMs: 10 });
    const controller = new AbortController();
    const res = await postJson(
      `${gw.baseUrl}/chat/completions`,
      { model: "up/m", messages: [{ role: "user", content: "x" }], stream: true },
      { headers: { ...auth.headers, "x-request-id": "gone-1" }, signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    for (let i = 0; i < 50 && !logs.lines.some((l) => l.requestId === "gone-1"); i++) await new Promise((r) => setTimeout(r, 10));
    const line = logs.lines.find((l) => l.requestId === "gone-1");
    assert.equal(line?.clientDisconnected, true);
    assert.equal(line?.outcome, "cancelled");
  });

  it("counts and logs gRPC calls, with the request id from metadata", async () => {
    const before = await scrape();
    logs.lines.length = 0;
    const client = spillwayClient(gw.grpcAddress!);
    const md = new Metadata();
    md.set("authorization", "Bearer sk-gateway-secret-1");
    md.set("x-request-id", "grpc-7");
    const r = await readAll(client.generate(generateRequest("local/echo", "a b c"), md));
    assert.equal(r.chunks.at(-1)?.payload?.$case, "finish");
    client.close();
    const after = await scrape();
    const labels = { door: "grpc", route: "Generate", model: "local/echo", provider: "local", outcome: "ok", status: "OK" };
    assert.equal(value(after, "spillway_requests_total", labels) - value(before, "spillway_requests_total", labels), 1);
    const h = { door: "grpc", route: "Generate", provider: "local" };
    assert.equal(value(after, "spillway_time_to_first_chunk_seconds", h) - value(before, "spillway_time_to_first_chunk_seconds", h), 1);
    const line = logs.lines.find((l) => l.requestId === "grpc-7");
    assert.equal(line?.door, "grpc");
    assert.equal(line?.outputTokens, 3);
    assert.ok(!JSON.stringify(logs.lines).includes("sk-gateway-secret-1"));
    assert.ok(after.samples.some((l) => l.startsWith('spillway_active_streams{door="grpc"}')));
  });

  it("counts WebSocket sessions and realtime responses", async () => {
    const before = await scrape();
    logs.lines.length = 0;
    const client = await RealtimeTestClient.connect(realtimeUrl(gw.origin), { headers: auth.headers });
    await client.next("session.created");
    const open = await scrape();
    assert.equal(value(open, "spillway_active_streams", { door: "ws" }), 1, "one session open");
    client.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "hello metrics" }] } });
    client.send({ type: "response.create", response: { output_modalities: ["text"] } });
    const done = await client.next("response.done");
    assert.equal(done.response.status, "completed");
    await client.close();
    await new Promise((r) => setTimeout(r, 50));
    const after = await scrape();
    const labels = { door: "ws", route: "/v1/realtime", model: "local/echo", provider: "local", outcome: "ok", status: "ok" };
    assert.equal(value(after, "spillway_requests_total", labels) - value(before, "spillway_requests_total", labels), 1);
    const h = { door: "ws", route: "/v1/realtime", provider: "local" };
    assert.equal(value(after, "spillway_time_to_first_chunk_seconds", h) - value(before, "spillway_time_to_first_chunk_seconds", h), 1);
    assert.equal(value(after, "spillway_active_streams", { door: "ws" }), 0, "the session is gone");
    assert.ok(logs.lines.some((l) => l.door === "ws" && l.route === "/v1/realtime"), "a log line for the response");
  });

  it("reports readiness with each provider's state", async () => {
    const res = await fetch(`${gw.origin}/readyz`);
    const body = (await res.json()) as any;
    assert.equal(res.status, 200);
    assert.deepEqual(
      body.providers.map((p: any) => p.name),
      ["local", "up", "broken"],
    );
    assert.ok(body.providers.every((p: any) => p.state === "ok" || p.state === "circuit_open"));
  });
});
