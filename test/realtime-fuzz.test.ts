/**
 * Property-based fuzzing of the realtime door with fast-check: random JSON
 * events (known types with random fields, mutated valid events, junk) and
 * random binary frames. The session must stay open, every server event must
 * validate against RealtimeServerEvent, no error may be an internal one, and
 * the session must still answer afterwards. Also: shutting the gateway down
 * closes open sessions with 1001.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { CLIENT_EVENT_TYPES } from "../src/doors/ws/client-events.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 200);

const VALID: Array<Record<string, unknown>> = [
  { type: "session.update", session: { type: "realtime", output_modalities: ["text"], audio: { input: { turn_detection: null } } } },
  { type: "input_audio_buffer.append", audio: "AAAAAA==" },
  { type: "input_audio_buffer.clear" },
  { type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] } },
  { type: "conversation.item.truncate", item_id: "x", content_index: 0, audio_end_ms: 0 },
  { type: "conversation.item.retrieve", item_id: "x" },
  { type: "response.cancel" },
];

const value = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.object({ maxDepth: 2 }));

const frames = fc.oneof(
  // A known type with random fields.
  fc.record({ type: fc.constantFrom(...CLIENT_EVENT_TYPES.filter((t) => t !== "response.create")) }).chain((base) =>
    fc.dictionary(fc.constantFrom("session", "audio", "item", "item_id", "content_index", "audio_end_ms", "event_id", "previous_item_id", "response_id"), value).map((extra) => JSON.stringify({ ...extra, ...base })),
  ),
  // A valid event with one field replaced.
  fc.tuple(fc.constantFrom(...VALID), fc.string({ maxLength: 20 }), value).map(([v, k, x]) => JSON.stringify({ ...v, [k === "type" ? "x" : k]: x })),
  // Anything.
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 200 }),
);

describe("fuzzing the realtime door", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it("random events and frames: error events at most, never internal; the session stays open and answers", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(gw.origin));
    await c.next("session.created");
    c.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"], audio: { input: { turn_detection: null } } } });
    await c.next("session.updated");
    fc.assert(
      fc.property(frames, (frame) => {
        c.ws.send(frame);
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        c.ws.send(bytes, { binary: true });
      }),
      { numRuns: 50 },
    );
    // Whatever state the fuzzing left, the session answers a clean turn.
    c.send({ type: "response.cancel" });
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "still alive" }] } });
    const from = c.events.length;
    c.send({ type: "response.create", response: { output_modalities: ["text"], conversation: "auto" } });
    const done = await c.next("response.done", () => true, 20_000, from);
    assert.ok(["completed", "cancelled"].includes(done.response.status));
    assert.equal(c.ws.readyState, c.ws.OPEN);
    const internal = c.all("error").filter((e) => e.error.type === "server_error");
    assert.deepEqual(internal, []);
    assert.deepEqual(c.invalid, []);
    await c.close();
  });

  it("closing the gateway closes open sessions with 1001", async () => {
    const other = await startTestGateway();
    const c = await RealtimeTestClient.connect(realtimeUrl(other.origin));
    await c.next("session.created");
    await other.close();
    assert.equal((await c.closed).code, 1001);
  });
});
