/**
 * The adaptive limit does not read a cold start as overload (issue 16): a
 * process's first load runs code the JIT has not compiled yet, and that
 * loop delay used to drop a fresh worker's limit to `minLimit`. No cut
 * happens before the first sample with a stream open, nor for `warmupMs`
 * after it. The limiter runs on its own clock and samples here (`now`,
 * `sampler: "manual"`): nothing about real time is asserted.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../src/config/load.js";
import { AdaptiveLimit, type Release } from "../src/engine/adaptive-limit.js";

/** A limiter on a clock the test moves, sampled only by the test. */
function limiter(warmupMs: number): { a: AdaptiveLimit; at: (ms: number) => void } {
  let t = 0;
  const a = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 2, queueMs: 0, warmupMs, now: () => t, sampler: "manual" });
  return { a, at: (ms) => (t = ms) };
}

const hold = (a: AdaptiveLimit, n: number): Release[] => Array.from({ length: n }, () => a.enter() as Release);

describe("adaptive limit warm-up (injected clock and sampler)", () => {
  it("no cut during the warm-up after the first load sample; the same samples cut once it is over", () => {
    const { a, at } = limiter(2000);
    try {
      assert.equal(a.warmingUp, true, "before any load");
      const held = hold(a, 10);
      at(0);
      a.update(500, 1);
      a.update(500, 1);
      a.update(500, 1);
      assert.equal(a.limit, Infinity, "slow samples at the first load: start-up delay, not overload");
      at(1999);
      a.update(500, 1);
      assert.equal(a.limit, Infinity, "still warming up");
      at(2000);
      assert.equal(a.warmingUp, false);
      a.update(500, 1);
      assert.equal(a.limit, 9, "warmed up: 90% of the 10 open");
      for (const r of held) r();
    } finally {
      a.stop();
    }
  });

  it("the window is counted from the first load, not from construction (an idle process is still cold)", () => {
    const { a, at } = limiter(2000);
    try {
      // Idle for ten seconds: slow samples with nothing open (a blocking start-up, another process).
      for (let t = 0; t < 10_000; t += 1000) {
        at(t);
        a.update(500, 1);
      }
      assert.equal(a.warmingUp, true, "no load yet: the warm-up has not started");
      at(10_000);
      const held = hold(a, 4);
      a.update(500, 1);
      a.update(500, 1);
      at(11_000);
      a.update(500, 1);
      assert.equal(a.limit, Infinity, "one second into the first load");
      at(12_000);
      a.update(500, 1);
      assert.equal(a.limit, 3, "cut once the warm-up since the first load is over");
      for (const r of held) r();
    } finally {
      a.stop();
    }
  });

  it("without a warm-up (warmupMs 0, the class default) the second slow sample cuts at once", () => {
    const { a } = limiter(0);
    try {
      const held = hold(a, 10);
      a.update(500, 1);
      a.update(500, 1);
      assert.equal(a.limit, 9);
      for (const r of held) r();
    } finally {
      a.stop();
    }
  });

  it("the gateway's default warm-up is 2 s (limits.adaptiveConcurrency.warmupMs); errors name the field", () => {
    assert.equal(parseConfig({}).limits.adaptiveConcurrency.warmupMs, 2000);
    assert.equal(parseConfig({ limits: { adaptiveConcurrency: { warmupMs: 0 } } }).limits.adaptiveConcurrency.warmupMs, 0);
    assert.throws(() => parseConfig({ limits: { adaptiveConcurrency: { warmupMs: -1 } } }), /limits\.adaptiveConcurrency\.warmupMs/);
  });
});
