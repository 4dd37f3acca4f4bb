/**
 * The overload bench's pure pieces (load/overload-capacity.ts, issue 16):
 * the latency-bound capacity search on synthetic step results, the step
 * ratios against one unloaded divisor, the limit trace summary and the
 * `--adaptive-target` list. No servers.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { betterAttempt, latencyBoundCapacity, limitGaugeValues, limitTrace, parseAdaptiveTargets, stepCapacity, stepRatios, stepWithinBound, windowedP99, type SearchStep } from "../load/overload-capacity.js";
import { windowP99s, type JobResult } from "../load/loadgen.js";
import { searchStep } from "../load/overload.js";

const step = (rate: number, p99: number, extra: Partial<SearchStep> = {}): SearchStep => ({ rate, started: rate * 5, ok: rate * 5, errors: 0, refused: 0, p99, ...extra });

describe("latency-bound capacity search", () => {
  it("the highest rate whose p99 stays within 3× the unloaded p99", () => {
    const steps = [step(200, 20), step(300, 25), step(400, 35), step(500, 80), step(600, 200)];
    assert.equal(latencyBoundCapacity(steps, 12), 400, "36 ms bound: 500/s at 80 ms is past it");
  });

  it("stops at the first failing step: a later passing one is noise past the knee", () => {
    assert.equal(latencyBoundCapacity([step(200, 20), step(300, 90), step(400, 30)], 12), 200);
  });

  it("a step with a stream not served fails, whatever its p99", () => {
    assert.equal(stepWithinBound(step(300, 10, { ok: 1499, errors: 1 }), 12), false);
    assert.equal(stepWithinBound(step(300, 10, { refused: 1, ok: 1499 }), 12), false);
    assert.equal(stepWithinBound(step(300, 10, { skipped: 3 }), 12), false);
    assert.equal(latencyBoundCapacity([step(200, 10), step(300, 10, { ok: 1499, errors: 1 })], 12), 200);
  });

  it("no capacity when the first step fails or nothing ran; order of the input does not matter", () => {
    assert.equal(latencyBoundCapacity([step(200, 100)], 12), undefined);
    assert.equal(latencyBoundCapacity([], 12), undefined);
    assert.equal(latencyBoundCapacity([step(400, 30), step(200, 20), step(300, 25)], 12), 400);
  });

  it("the bound is inclusive: p99 exactly 3× unloaded passes", () => {
    assert.equal(stepWithinBound(step(200, 36), 12), true);
  });
});

describe("a failing search step offered twice", () => {
  it("keeps a pass over a failure, else the lower p99", () => {
    const fail = step(300, 90);
    const pass = step(300, 30);
    assert.equal(betterAttempt(fail, pass, 12), pass);
    assert.equal(betterAttempt(pass, fail, 12), pass);
    assert.equal(betterAttempt(step(300, 90), step(300, 60), 12).p99, 60);
    assert.equal(betterAttempt(step(300, 10, { ok: 1, errors: 1 }), step(300, 50), 12).p99, 10, "both fail: the lower p99");
  });
});

describe("which capacity the steps multiply", () => {
  it("latency-bound when measured (latency, both), else closed loop", () => {
    assert.equal(stepCapacity("both", 500, 1200), 500);
    assert.equal(stepCapacity("latency", 500, undefined), 500);
    assert.equal(stepCapacity("closed", 500, 1200), 1200);
    assert.equal(stepCapacity("both", undefined, 1200), 1200);
    assert.equal(stepCapacity("latency", undefined, 1200), 0);
  });
});

describe("step ratios against one unloaded divisor", () => {
  it("served share of capacity and p99 over the one unloaded p99", () => {
    const r = stepRatios(9000, 20, 42, 500, 14);
    assert.deepEqual(r, { servedPerS: 450, servedShare: 0.9, p99VsUnloaded: 3 });
  });

  it("every step of a door divides by the same unloaded p99", () => {
    const unloaded = 12;
    const rows = [stepRatios(10_000, 20, 24, 500, unloaded), stepRatios(10_000, 20, 60, 500, unloaded)];
    assert.deepEqual(rows.map((r) => r.p99VsUnloaded), [2, 5]);
  });

  it("undefined ratios with no capacity or no divisor", () => {
    assert.equal(stepRatios(100, 20, 30, 0, 12).servedShare, undefined);
    assert.equal(stepRatios(100, 20, 30, 500, undefined).p99VsUnloaded, undefined);
    assert.equal(stepRatios(100, 20, undefined, 500, 12).p99VsUnloaded, undefined);
  });
});

describe("the unloaded divisor", () => {
  it("the median of the windows' p99s: one window hit by a host stall does not set it", () => {
    assert.equal(windowedP99({ ttft: { p99: 52 }, ttftWindowP99: [11, 96, 13, 12] }), 12.5);
    assert.equal(windowedP99({ ttft: { p99: 52 }, ttftWindowP99: [11, 96, 13] }), 13);
  });

  it("a pause that recurs in most windows stays in it", () => {
    assert.equal(windowedP99({ ttft: { p99: 30 }, ttftWindowP99: [25, 28, 9, 30] }), 26.5);
  });

  it("per-window p99s of the load generator: a last window under half of one is left out", () => {
    // n streams, the slowest 2% at `worst`: the window's p99 is `worst`.
    const w = (n: number, worst: number): number[] => Array.from({ length: n }, (_, i) => (i >= n * 0.98 ? worst : 1));
    assert.deepEqual(windowP99s([w(500, 9), w(500, 90), w(500, 12), w(500, 11), w(50, 400)], 20.5), [9, 90, 12, 11]);
    assert.deepEqual(windowP99s([w(500, 9), w(500, 90), w(300, 12)], 13), [9, 90, 12], "13 s: the third window has 3 of 5 s");
    assert.deepEqual(windowP99s([w(200, 7)], 2), [7], "a run shorter than a window has one");
    assert.deepEqual(windowP99s([undefined, w(500, 8)], 10), [8], "a window with nothing served is left out");
  });

  it("a capacity-search step is judged the same way: the median of its windows", () => {
    const r = { started: 1000, ok: 1000, errors: 0, refused: 0, ttft: { p99: 88 }, ttftWindowP99: [9, 90, 10, 11, 12] } as unknown as JobResult;
    assert.equal(searchStep(200, r).p99, 11);
    assert.equal(stepWithinBound(searchStep(200, r), 4), true, "within 3x of a 4 ms divisor, though its whole p99 is 88");
  });

  it("the whole run's p99 with fewer than 3 windows, or none (older results)", () => {
    assert.equal(windowedP99({ ttft: { p99: 40 }, ttftWindowP99: [10, 90] }), 40);
    assert.equal(windowedP99({ ttft: { p99: 40 } }), 40);
    assert.equal(windowedP99({ ttft: { p99: undefined }, ttftWindowP99: [] }), undefined);
  });
});

describe("limit trace", () => {
  it("min/median/max with -1 (unlimited) above every number", () => {
    assert.deepEqual(limitTrace([-1, 40, 32, 64, -1]), { samples: 5, min: 32, median: 64, max: -1 });
    assert.deepEqual(limitTrace([]), { samples: 0, min: undefined, median: undefined, max: undefined });
  });

  it("reads the gauge from /metrics text, labelled or not", () => {
    const text = "# HELP spillway_concurrency_limit x\nspillway_concurrency_limit -1\nspillway_concurrency_limit{worker=\"1\"} 57\nspillway_concurrency_in_use 3\n";
    assert.deepEqual(limitGaugeValues(text), [-1, 57]);
  });
});

describe("--adaptive-target", () => {
  it("parses MS:SIGNAL lists, a bare MS is max", () => {
    assert.deepEqual(parseAdaptiveTargets("5:max,25,10:mean"), [
      { targetDelayMs: 5, signal: "max" },
      { targetDelayMs: 25, signal: "max" },
      { targetDelayMs: 10, signal: "mean" },
    ]);
    assert.throws(() => parseAdaptiveTargets("5:p99"), /5:p99/);
    assert.throws(() => parseAdaptiveTargets("x"), /"x"/);
  });
});
