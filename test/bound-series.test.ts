/**
 * Bound series (bound-series.ts) move prom-client's own series: a scrape
 * after increments and observations through them is the same text as a
 * scrape of metrics moved through prom-client's public API with the same
 * values, across resets, other code moving the same series, several
 * label combinations and values past the last bucket; invalid values still
 * throw as prom-client throws.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { CounterSeries, HistogramSeries } from "../src/observability/bound-series.js";
import { createMetrics } from "../src/observability/metrics.js";

const BUCKETS = [0.001, 0.01, 0.1, 1];

function pair(): { reg: Registry; counter: Counter<"door" | "route">; hist: Histogram<"door" | "route"> } {
  const reg = new Registry();
  return {
    reg,
    counter: new Counter({ name: "t_total", help: "h", labelNames: ["door", "route"], registers: [reg] }),
    hist: new Histogram({ name: "t_seconds", help: "h", labelNames: ["door", "route"], buckets: BUCKETS, registers: [reg] }),
  };
}

describe("bound series", () => {
  it("scrape the same as prom-client's own inc and observe", async () => {
    const bound = pair();
    const plain = pair();
    const a = { door: "http", route: "/v1/chat/completions" };
    const b = { door: "grpc", route: "Generate" };
    const ca = new CounterSeries(bound.counter, a);
    const cb = new CounterSeries(bound.counter, b);
    const ha = new HistogramSeries(bound.hist, a);
    const hb = new HistogramSeries(bound.hist, b);
    const values = [0.0005, 0.001, 0.0011, 0.05, 0.5, 1, 2.5, 30, 0, 0.1];
    for (const [i, v] of values.entries()) {
      ca.inc(i);
      plain.counter.inc(a, i);
      ha.observe(v);
      plain.hist.observe(a, v);
      if (i % 3 === 0) {
        cb.inc(2);
        plain.counter.inc(b, 2);
        hb.observe(v * 2);
        plain.hist.observe(b, v * 2);
      }
    }
    // Other code moving the same series with its own label object (as before this change).
    bound.counter.inc({ route: a.route, door: a.door }, 5);
    plain.counter.inc(a, 5);
    bound.hist.observe({ ...a }, 0.02);
    plain.hist.observe(a, 0.02);
    ca.inc(1);
    plain.counter.inc(a, 1);
    ha.observe(0.003);
    plain.hist.observe(a, 0.003);
    assert.equal(await bound.reg.metrics(), await plain.reg.metrics());
    assert.match(await bound.reg.metrics(), /t_total\{door="http",route="\/v1\/chat\/completions"\} 51/);
  });

  it("rebind after a reset: the reset series start again from prom-client's own entry", async () => {
    const bound = pair();
    const plain = pair();
    const a = { door: "http", route: "/r" };
    const c = new CounterSeries(bound.counter, a);
    const h = new HistogramSeries(bound.hist, a);
    c.inc(3);
    h.observe(0.5);
    bound.counter.reset();
    bound.hist.reset();
    c.inc(4);
    h.observe(0.002);
    h.observe(0.2);
    plain.counter.inc(a, 4);
    plain.hist.observe(a, 0.002);
    plain.hist.observe(a, 0.2);
    assert.equal(await bound.reg.metrics(), await plain.reg.metrics());
    bound.reg.resetMetrics();
    plain.reg.resetMetrics();
    c.inc(1);
    plain.counter.inc(a, 1);
    assert.equal(await bound.reg.metrics(), await plain.reg.metrics());
  });

  it("refuse what prom-client refuses", () => {
    const { counter, hist } = pair();
    const c = new CounterSeries(counter, { door: "http", route: "/r" });
    const h = new HistogramSeries(hist, { door: "http", route: "/r" });
    c.inc(1);
    h.observe(1);
    assert.throws(() => c.inc(-1), /decrease/);
    assert.throws(() => c.inc(Infinity), /not a valid number/);
    assert.throws(() => h.observe(Number.NaN), /not a valid number/);
    assert.throws(() => new CounterSeries(counter, { door: "http", nope: "x" }).inc(1), /label/i);
  });

  it("the gateway's request series are kept per label combination and move the gateway's metrics", async () => {
    const m = createMetrics();
    const s1 = m.requestSeries("http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "200");
    assert.equal(m.requestSeries("http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "200"), s1);
    const s2 = m.requestSeries("http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "201");
    assert.notEqual(s2, s1);
    // Back and forth: the last-used shortcut and the map agree.
    assert.equal(m.requestSeries("http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "200"), s1);
    assert.equal(m.requestSeries("http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "201"), s2);
    for (const [i, label] of ["grpc", "Generate", "grpc", "m2", "p2", "cancelled", "499"].entries()) {
      const args: [string, string, string, string, string, string, string] = ["http", "/v1/chat/completions", "openai", "up/m", "up", "ok", "200"];
      args[i] = label;
      assert.notEqual(m.requestSeries(...args), s1, `a different ${i}th label is another series`);
    }
    s1.requests.inc(1);
    s1.tokensIn.inc(7);
    s1.timeToFirstChunk.observe(0.004);
    const text = await m.scrape();
    assert.match(text, /spillway_requests_total\{door="http",route="\/v1\/chat\/completions",shape="openai",model="up\/m",provider="up",outcome="ok",status="200"\} 1/);
    assert.match(text, /spillway_tokens_total\{direction="in",provider="up"\} 7/);
    assert.match(text, /spillway_time_to_first_chunk_seconds_bucket\{le="0.005",door="http",route="\/v1\/chat\/completions",provider="up"\} 1/);
    // A series no request moved is not exported (bound on first use).
    assert.doesNotMatch(text, /spillway_tokens_total\{direction="out"/);
    assert.doesNotMatch(text, /status="201"/);
  });
});
