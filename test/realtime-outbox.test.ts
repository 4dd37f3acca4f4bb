/**
 * The realtime outbox (issue 16): ids drawn from a refilled random pool stay
 * unique and OpenAI-shaped; in batched mode the events of one turn reach the
 * socket in one cork, in order, one message each, `flush()` sends at once,
 * and queued bytes count against the high-water mark without stranding a
 * waiting sender; a delta sender writes the same event `send` would.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newId, Outbox, type EventSocket } from "../src/doors/ws/outbox.js";

/** A socket that records each cork and the messages sent inside it. */
function fakeSocket(buffered = () => 0): EventSocket & { corks: string[][] } {
  const corks: string[][] = [];
  let current: string[] | undefined;
  return {
    corks,
    send(m) {
      if (current) current.push(m);
      else corks.push([m]);
      return 1;
    },
    getBufferedAmount: buffered,
    cork(cb) {
      current = [];
      cb();
      corks.push(current);
      current = undefined;
    },
  };
}

const types = (corks: string[][]): string[][] => corks.map((c) => c.map((m) => (JSON.parse(m) as { type: string }).type));

describe("realtime ids", () => {
  it("are prefix_ + 16 base64url characters and unique across pool refills", () => {
    const ids = Array.from({ length: 2_000 }, () => newId("event"));
    for (const id of ids) assert.match(id, /^event_[A-Za-z0-9_-]{16}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.match(newId("item"), /^item_[A-Za-z0-9_-]{16}$/);
  });
});

describe("realtime outbox", () => {
  it("batched: the events of one turn go out in one cork, in order, one message each, with their own event ids", async () => {
    const socket = fakeSocket();
    const outbox = new Outbox(socket, false, 1 << 20, undefined, true);
    for (let i = 0; i < 3; i++) {
      await Promise.resolve();
      outbox.send({ type: "response.output_text.delta", delta: String(i) });
    }
    assert.equal(socket.corks.length, 0, "nothing sent before the turn ends");
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(types(socket.corks), [["response.output_text.delta", "response.output_text.delta", "response.output_text.delta"]]);
    const events = socket.corks[0]!.map((m) => JSON.parse(m) as { delta: string; event_id: string });
    assert.deepEqual(events.map((e) => e.delta), ["0", "1", "2"]);
    assert.equal(new Set(events.map((e) => e.event_id)).size, 3);
  });

  it("batched: flush() sends what is queued at once (before the socket is ended), and nothing after close", () => {
    const socket = fakeSocket();
    const outbox = new Outbox(socket, true, 1 << 20, undefined, true);
    outbox.send({ type: "error", error: { message: "bye" } });
    outbox.flush();
    assert.deepEqual(types(socket.corks), [["error"]]);
    outbox.send({ type: "response.output_text.delta", delta: "x" });
    outbox.onClose();
    outbox.flush();
    outbox.send({ type: "response.output_text.delta", delta: "y" });
    assert.equal(socket.corks.length, 1);
  });

  it("unbatched: each event is sent at once (beta names applied)", () => {
    const socket = fakeSocket();
    const outbox = new Outbox(socket, true, 1 << 20);
    outbox.send({ type: "response.output_text.delta", delta: "x" });
    assert.deepEqual(types(socket.corks), [["response.text.delta"]]);
  });

  it("batched: queued bytes count against the mark, and a sender waiting on them is released by the flush", async () => {
    const socket = fakeSocket();
    const outbox = new Outbox(socket, false, 100, undefined, true);
    outbox.send({ type: "response.output_audio.delta", delta: "a".repeat(200) });
    let ready = false;
    const waiting = outbox.ready().then(() => (ready = true));
    await Promise.resolve();
    assert.equal(ready, false, "over the mark while queued");
    await waiting;
    assert.equal(socket.corks.length, 1, "released after the queue went to the socket");
  });
});

describe("realtime delta sender", () => {
  const fields = { response_id: "resp_1", item_id: "item_\"q", output_index: 0, content_index: 0 };
  const withoutId = (m: string): string => m.replace(/,"event_id":"event_[A-Za-z0-9_-]{16}"/, "");

  for (const beta of [false, true]) {
    it(`writes the bytes send() writes, but for the event id (${beta ? "beta" : "GA"} names)`, () => {
      const socket = fakeSocket();
      const outbox = new Outbox(socket, beta, 1 << 20);
      const delta = outbox.deltaSender("response.output_text.delta", fields);
      for (const d of ["héllo", 'a "quoted"\nline', ""]) {
        delta(d);
        outbox.send({ type: "response.output_text.delta", ...fields, delta: d });
      }
      const sent = socket.corks.map((c) => c[0]!);
      for (let i = 0; i < sent.length; i += 2) assert.equal(withoutId(sent[i]!), withoutId(sent[i + 1]!));
      const first = JSON.parse(sent[0]!) as Record<string, unknown>;
      assert.equal(first["type"], beta ? "response.text.delta" : "response.output_text.delta");
      assert.match(String(first["event_id"]), /^event_/);
      assert.notEqual(first["event_id"], (JSON.parse(sent[2]!) as Record<string, unknown>)["event_id"]);
    });
  }

  it("with an observe hook, every delta is seen as an object; nothing is sent after close", () => {
    const socket = fakeSocket();
    const seen: Array<Record<string, unknown>> = [];
    const outbox = new Outbox(socket, false, 1 << 20, (e) => seen.push(e));
    const delta = outbox.deltaSender("response.output_text.delta", fields);
    delta("x");
    assert.equal(seen[0]?.["delta"], "x");
    outbox.onClose();
    delta("y");
    assert.equal(socket.corks.length, 1);
    const plain = new Outbox(fakeSocket(), false, 1 << 20);
    const d2 = plain.deltaSender("response.output_text.delta", fields);
    plain.onClose();
    d2("z");
  });
});
