/**
 * The realtime outbox (issue 16): ids drawn from a refilled random pool stay
 * unique and OpenAI-shaped.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newId } from "../src/doors/ws/outbox.js";

describe("realtime ids", () => {
  it("are prefix_ + 16 base64url characters and unique across pool refills", () => {
    const ids = Array.from({ length: 2_000 }, () => newId("event"));
    for (const id of ids) assert.match(id, /^event_[A-Za-z0-9_-]{16}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.match(newId("item"), /^item_[A-Za-z0-9_-]{16}$/);
  });
});
