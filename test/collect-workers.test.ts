/**
 * `/metrics` (and the console) under `--workers N` ask only workers that can
 * answer: real cluster workers (test/fixtures/collect-worker.ts) with real
 * prom-client registries, the gateway's own `workerScrape` in each and the
 * primary's `relayCollect` + `primaryScrape` in this process. A worker still
 * starting or one that exits mid-scrape is not waited for; a running worker
 * that does not answer makes the scrape fail (a partial sum would look like a
 * counter reset), never hang.
 */
import assert from "node:assert/strict";
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { primaryScrape } from "../src/observability/cluster-metrics.js";
import { relayCollect } from "../src/workers/collect.js";

cluster.setupPrimary({ exec: fileURLToPath(new URL("./fixtures/collect-worker.ts", import.meta.url)), execArgv: ["--import", "tsx"], silent: false });
const collect = relayCollect();
const primary = primaryScrape(collect);

async function fork(mode: string, count = 0): Promise<Worker> {
  const w = cluster.fork({ FIXTURE_MODE: mode, FIXTURE_COUNT: String(count) });
  await new Promise<void>((resolve, reject) => {
    w.on("message", (m: { type?: string }) => m.type === "fixture:up" && resolve());
    w.once("exit", (c) => reject(new Error(`fixture worker exited (${c}) before it was up`)));
  });
  return w;
}

function scrapeThrough(w: Worker): Promise<{ text?: string; error?: string }> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; text?: string; error?: string }): void => {
      if (m.type !== "fixture:scraped") return;
      w.off("message", on);
      resolve(m);
    };
    w.on("message", on);
    w.send({ type: "fixture:scrape" });
  });
}

async function stopAll(): Promise<void> {
  await Promise.all(
    Object.values(cluster.workers ?? {}).map(
      (w) => new Promise<void>((r) => (w && !w.isDead() ? (w.once("exit", () => r()), w.kill()) : r())),
    ),
  );
}

function total(text: string): number {
  const line = text.split("\n").find((l) => l.startsWith("fixture_requests_total "));
  assert.ok(line, `a fixture_requests_total line in:\n${text}`);
  return Number(line.split(" ")[1]);
}

describe("collecting from every worker", () => {
  after(stopAll);

  it("a scrape while a worker is still starting answers with the workers that are up, summed", async () => {
    const a = await fork("answer", 2);
    await fork("answer", 3);
    await fork("loading");
    const viaWorker = await scrapeThrough(a);
    assert.equal(viaWorker.error, undefined);
    assert.equal(total(viaWorker.text!), 5, "both answering workers' counters summed; the starting one not waited for");
    assert.equal(total(await primary()), 5, "the primary's own metrics port says the same");
    await stopAll();
  });

  it("a worker that exits during a scrape is not waited for", async () => {
    const a = await fork("answer", 7);
    await fork("dies");
    const r = await scrapeThrough(a);
    assert.equal(r.error, undefined);
    assert.equal(total(r.text!), 7);
    await stopAll();
  });

  it("a running worker that does not answer fails the scrape with a clear error, and the rest still collect", async () => {
    const a = await fork("answer", 1);
    await fork("silent");
    const r = await scrapeThrough(a);
    assert.equal(r.text, undefined);
    assert.equal(r.error, "1 worker did not answer the metrics request");
    const c = await collect("metrics");
    assert.equal(c.missing, 1);
    assert.equal(c.parts.length, 1, "the answering worker's part is still there for collections that take what they get");
    await stopAll();
  });
});
