/**
 * gRPC `Attach` follows the same rule as the HTTP followers of the durable
 * log (`route.follows` + `Admission.hold`): one that would wait in the
 * adaptive queue (its early ticket is spent) waits there for a slot of its
 * own, then holds it while it replays and follows, and frees it once when
 * the call ends. Shown without timing: the adaptive limit is pinned at 2
 * (`minLimit` = `maxLimit`) with a long queue; a background generation holds
 * one slot and a slow stream the other, so the Attach must queue; when the
 * slow stream ends, the Attach gets its slot (slots held: the generation's
 * and the Attach's — one, had it followed without a slot).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Chunk } from "../src/gen/spillway/v1/chunk.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { spillwayClient } from "./helpers/grpc.js";
import { until } from "./helpers/saturate.js";
import { postJson } from "./helpers/sse.js";

const WORDS = (n: number): string => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("gRPC Attach that would queue takes a slot (Admission.hold)", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { local: { type: "local", tokenDelayMs: 20 } },
      limits: { adaptiveConcurrency: { targetDelayMs: 0.001, minLimit: 2, maxLimit: 2, queueMs: 60_000 } },
    });
  });
  after(() => gw.close());

  it("waits in the queue for a slot, holds it while it follows, frees it once at the end", async () => {
    const admission = gw.gateway.engine.admission;
    const created = await postJson(`${gw.baseUrl}/responses`, { model: "local/echo", input: WORDS(2000), background: true });
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = (await created.json()) as { id: string };
    // The background generation holds one slot; a slow stream the other.
    const slow = new AbortController();
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: WORDS(2000) }], stream: true }, { signal: slow.signal });
    assert.equal(res.status, 200);
    void res.text().catch(() => undefined);
    await until(async () => admission.slotsHeld === 2, "both slots held");
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const call = client.attach({ streamId: id });
      const chunks: Chunk[] = [];
      call.on("data", (c: Chunk) => chunks.push(c));
      const ended = new Promise<void>((resolve) => {
        call.on("error", () => resolve());
        call.on("end", () => resolve());
      });
      // The Attach's handler runs with a spent ticket (it would wait): it must wait for the slow stream's slot.
      await until(async () => gw.gateway.grpc!.activeCalls === 1, "the Attach admitted early (its handler runs)");
      slow.abort();
      await until(async () => admission.openStreams === 1, "the slow stream ended (the generation's stream is left)");
      await until(async () => chunks.length > 0, "the Attach follows");
      assert.equal(admission.slotsHeld, 2, "the generation's slot and the Attach's own (it took the freed slot)");
      call.cancel();
      await ended;
      await until(async () => admission.slotsHeld === 1, "the Attach's slot freed when the call ended");
      assert.equal(admission.slotsHeld, 1, "freed once: the generation's slot is still held");
    } finally {
      client.close();
      await fetch(`${gw.baseUrl}/responses/${id}/cancel`, { method: "POST" });
    }
    await until(async () => admission.slotsHeld === 0, "every slot freed");
  });
});
