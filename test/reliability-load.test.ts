/**
 * Under load and under a slow reader: thousands of concurrent streams lose
 * and reorder nothing; a client that stops reading pauses the upstream
 * instead of making the gateway buffer.
 */
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { after, before, describe, it } from "node:test";
import { chatChunk, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { parseSse } from "./helpers/sse.js";

const CHUNKS = 10;

describe("load and backpressure", () => {
  let fake: FakeUpstream;
  let gw: TestGateway;
  before(async () => {
    fake = await startFakeOpenAi();
    gw = await startTestGateway({
      providers: { up: { type: "openai", baseUrl: fake.baseUrl } },
      routing: { maxAttempts: 1 },
      // This file proves the engine carries N streams at once without loss; adaptive
      // concurrency would (by design) shed part of a 2,000-connection burst that stalls the
      // loop on a loaded 2-core host. Shedding is proven in adaptive-concurrency / early-refusal.
      limits: { adaptiveConcurrency: { enabled: false } },
    });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  it("2,000 concurrent streams complete with zero lost or reordered chunks", async () => {
    const N = 2000;
    // The upstream sends each stream's first chunk, then holds every stream
    // until all N are open at once: the test cannot pass without N
    // concurrent streams through the gateway.
    let arrived = 0;
    let allOpen!: () => void;
    const gate = new Promise<void>((r) => (allOpen = r));
    fake.script = (req) => {
      const id = String(req.body.messages[0].content);
      if (++arrived === N) allOpen();
      return {
        events: [...Array.from({ length: CHUNKS }, (_, k) => chatChunk(`${id}:${k};`)), chatChunk(null, {}, "stop")],
        gate: { index: 1, until: gate },
        delayMs: 5,
      };
    };
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const one = (i: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: "up/m", messages: [{ role: "user", content: `s${i}` }], stream: true });
        const req = request(`${gw.baseUrl}/chat/completions`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (text += d));
          res.on("end", () => resolve(text));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
      });
    const results = await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
    let bad = 0;
    for (const [i, text] of results.entries()) {
      const events = parseSse(text);
      const content = events
        .filter((e) => e.data !== "[DONE]")
        .map((e) => JSON.parse(e.data).choices[0].delta.content ?? "")
        .join("");
      const expected = Array.from({ length: CHUNKS }, (_, k) => `s${i}:${k};`).join("");
      if (content !== expected || events.at(-1)?.data !== "[DONE]") bad++;
    }
    assert.equal(bad, 0, `${bad} of ${N} streams lost or reordered chunks`);
    assert.equal(arrived, N);
    agent.destroy();
  });

  it("a client that stops reading pauses the upstream (bounded buffering)", async () => {
    // A fast upstream with far more data than socket buffers hold: 4,000 events of 16 KiB (64 MiB).
    const piece = "x".repeat(16 * 1024);
    const total = 4000;
    let written = 0;
    let waitingForDrain = false;
    fake.script = () => ({
      events: Array.from({ length: total }, () => chatChunk(piece)),
      onWrite: (ok: boolean) => {
        written++;
        waitingForDrain = !ok;
      },
      respectBackpressure: true,
    });
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        let bytes = 0;
        res.on("data", (d: Buffer) => {
          bytes += d.length;
          if (bytes > 1024 * 1024) res.pause(); // read 1 MiB, then stop reading
        });
        setTimeout(() => {
          resolve(bytes);
          res.destroy();
        }, 1500);
      });
      req.on("error", reject);
      req.end(JSON.stringify({ model: "up/m", messages: [{ role: "user", content: "x" }], stream: true }));
    });
    const writtenBytes = written * piece.length;
    console.log(`# slow client read ${(received / 2 ** 20).toFixed(1)} MiB; upstream got ${(writtenBytes / 2 ** 20).toFixed(1)} MiB out before it was paused`);
    assert.ok(waitingForDrain, "the upstream is paused, waiting for the gateway to read");
    assert.ok(written < total, "the upstream could not push everything");
    // What sits between the upstream and the client is bounded by socket
    // buffers and one chunk, not by the stream's size.
    assert.ok(writtenBytes - received < 32 * 2 ** 20, `${((writtenBytes - received) / 2 ** 20).toFixed(1)} MiB in flight`);
  });
});
