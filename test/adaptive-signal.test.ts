/**
 * `limits.adaptiveConcurrency.signal` (issue 16): which loop-delay statistic
 * of a sample drives the adaptive limit — `max` (the worst delay, the
 * default) or `mean`. The option is validated by the config schema, and the
 * limiter, fed samples by hand (`sampler: "manual"`), cuts on the statistic
 * it names and ignores the other. Nothing about real time is asserted.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../src/config/load.js";
import { AdaptiveLimit, type LoopDelaySignal, type Release } from "../src/engine/adaptive-limit.js";

/** A limiter with a 10 ms target, sampled only by the test, with 10 streams open. */
function limiter(signal?: LoopDelaySignal): { a: AdaptiveLimit; held: Release[] } {
  const a = new AdaptiveLimit({ targetDelayMs: 10, minLimit: 2, queueMs: 0, sampler: "manual", ...(signal ? { signal } : {}) });
  const held = Array.from({ length: 10 }, () => a.enter() as Release);
  return { a, held };
}

/** A sample with one long pause: the worst delay is over the 10 ms target, the mean is not. */
const spiky = { maxMs: 40, meanMs: 2 };
/** A sample with the loop late all through: the mean is over the target too. */
const steady = { maxMs: 30, meanMs: 20 };

describe("adaptive limit signal (max | mean)", () => {
  it("config: defaults to max, accepts mean, rejects anything else", () => {
    assert.equal(parseConfig({}).limits.adaptiveConcurrency.signal, "max");
    assert.equal(parseConfig({ limits: { adaptiveConcurrency: { signal: "mean" } } }).limits.adaptiveConcurrency.signal, "mean");
    assert.throws(() => parseConfig({ limits: { adaptiveConcurrency: { signal: "p99" } } }), /limits\.adaptiveConcurrency\.signal/);
  });

  it("the limiter defaults to max", () => {
    const { a, held } = limiter();
    assert.equal(a.signal, "max");
    held.forEach((r) => r());
    a.stop();
  });

  it("max: two samples whose worst delay is over the target cut the limit, whatever their mean", () => {
    const { a, held } = limiter("max");
    a.sample(spiky, 1);
    a.sample(spiky, 1);
    assert.equal(a.limit, 9, "90% of the 10 open");
    assert.equal(a.delayMs, 40, "the worst delay was used");
    held.forEach((r) => r());
    a.stop();
  });

  it("mean: the same samples leave the limit alone; samples whose mean is over the target cut it", () => {
    const { a, held } = limiter("mean");
    a.sample(spiky, 1);
    a.sample(spiky, 1);
    assert.equal(a.limit, Infinity, "one long pause in a quiet sample is not overload by its mean");
    assert.equal(a.delayMs, 2, "the mean delay was used");
    a.sample(steady, 1);
    a.sample(steady, 1);
    assert.equal(a.limit, 9, "a mean over the target cuts to 90% of the 10 open");
    assert.equal(a.delayMs, 20);
    held.forEach((r) => r());
    a.stop();
  });
});
