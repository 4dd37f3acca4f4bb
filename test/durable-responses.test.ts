/**
 * Stored and background Responses through the official `openai` SDK against
 * local/echo (slow tokens, so a stream can be cut mid-way): resume with
 * `starting_after`, background with nobody connected, cancel, delete,
 * input_items, previous_response_id, ownership, bad parameters.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";

type Event = { type: string; sequence_number: number; delta?: string; response?: { status: string; output_text?: string; output: Array<{ content?: Array<{ text: string }> }> } };

const KEYS = [
  { key: "sk-durable-alice-1", name: "alice" },
  { key: "sk-durable-bob-22", name: "bob" },
];
const WORDS = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");

function textOf(r: { output: Array<{ type?: string; content?: Array<{ text?: string }> }> }): string {
  return r.output.flatMap((o) => o.content ?? []).map((c) => c.text ?? "").join("");
}

describe("stored and background responses (openai SDK, local/echo)", () => {
  let gw: TestGateway;
  let alice: OpenAI;
  let bob: OpenAI;
  before(async () => {
    gw = await startTestGateway({ auth: { keys: KEYS }, providers: { local: { type: "local", tokenDelayMs: 15 } } });
    alice = new OpenAI({ apiKey: KEYS[0]!.key, baseURL: gw.baseUrl, maxRetries: 0 });
    bob = new OpenAI({ apiKey: KEYS[1]!.key, baseURL: gw.baseUrl, maxRetries: 0 });
  });
  after(() => gw.close());

  it("a client cut mid-stream resumes with exactly the missing events; deltas equal the final output_text", async () => {
    const first: Event[] = [];
    const stream = await alice.responses.create({ model: "local/echo", input: WORDS, stream: true, background: true });
    for await (const e of stream as AsyncIterable<Event>) {
      first.push(e);
      if (first.filter((x) => x.type === "response.output_text.delta").length === 5) break; // the client goes away
    }
    const id = (first[0]!.response as unknown as { id: string }).id;
    const last = first.at(-1)!.sequence_number;
    const rest: Event[] = [];
    const resumed = await alice.responses.retrieve(id, { stream: true, starting_after: last });
    for await (const e of resumed as AsyncIterable<Event>) rest.push(e);
    const all = [...first, ...rest];
    assert.deepEqual(all.map((e) => e.sequence_number), all.map((_, i) => i), "no gap, no duplicate");
    assert.equal(all.at(-1)!.type, "response.completed");
    const deltas = all.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    const final = await alice.responses.retrieve(id);
    assert.equal(final.status, "completed");
    assert.equal(final.output_text, deltas);
    assert.equal(deltas.replace(/\s+/g, " ").trim(), WORDS);
    assert.ok(final.usage && final.usage.output_tokens > 0, "usage stored");
    assert.equal(final.background, true);
    assert.equal((final as unknown as { store: boolean }).store, true);

    // A full replay renders the very same events (same sequence_number, same JSON).
    const replay: Event[] = [];
    for await (const e of (await alice.responses.retrieve(id, { stream: true })) as AsyncIterable<Event>) replay.push(e);
    assert.deepEqual(replay, all);
  });

  it("a background response completes with nobody connected", async () => {
    const created = await alice.responses.create({ model: "local/echo", input: "nobody is listening to this one", background: true });
    assert.ok(["queued", "in_progress"].includes(created.status ?? ""), created.status);
    assert.equal(created.background, true);
    // Nobody follows it: poll the stored object (non-streaming) until it has ended.
    let r = await alice.responses.retrieve(created.id);
    for (let i = 0; i < 500 && (r.status === "in_progress" || r.status === "queued"); i++) {
      await new Promise((res) => setTimeout(res, 20));
      r = await alice.responses.retrieve(created.id);
    }
    r = await alice.responses.retrieve(created.id);
    assert.equal(r.status, "completed");
    assert.equal(r.output_text, "nobody is listening to this one");
  });

  it("a foreground stored response is retrievable after it ends, with its input items", async () => {
    const r = await alice.responses.create({ model: "local/echo", input: [{ role: "user", content: "first" }, { role: "assistant", content: "x" }, { role: "user", content: "second" }] });
    assert.equal(r.status, "completed");
    assert.equal((r as unknown as { store: boolean }).store, true);
    const got = await alice.responses.retrieve(r.id);
    assert.equal(got.output_text, "second");
    const page = await alice.responses.inputItems.list(r.id, { limit: 2, order: "asc" });
    assert.equal(page.data.length, 2);
    assert.equal(page.has_more, true);
    const all = [];
    for await (const item of alice.responses.inputItems.list(r.id, { limit: 1 })) all.push(item);
    assert.equal(all.length, 3, "auto-pagination walks every item");
    assert.equal((all[0] as unknown as { content: Array<{ text: string }> }).content[0]!.text, "second", "desc by default");
  });

  it("store: false keeps nothing", async () => {
    const r = await alice.responses.create({ model: "local/echo", input: "ephemeral", store: false });
    assert.equal((r as unknown as { store: boolean }).store, false);
    await assert.rejects(alice.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it("cancel aborts a running background response; it ends cancelled; cancel is idempotent", async () => {
    const created = await alice.responses.create({ model: "local/echo", input: WORDS + " " + WORDS, background: true });
    const cancelled = await alice.responses.cancel(created.id);
    assert.equal(cancelled.status, "cancelled");
    const again = await alice.responses.cancel(created.id);
    assert.equal(again.status, "cancelled");
    const events: Event[] = [];
    for await (const e of (await alice.responses.retrieve(created.id, { stream: true })) as AsyncIterable<Event>) events.push(e);
    // OpenAI's ResponseStreamEvent has no response.cancelled (only a webhook is called that): the stream ends response.incomplete, status cancelled.
    assert.equal(events.at(-1)!.type, "response.incomplete");
    assert.equal(events.at(-1)!.response!.status, "cancelled");
    for (const e of events) assertSchema("ResponseStreamEvent", e);
    assert.deepEqual(events.slice(0, 2).map((e) => [e.type, e.response!.status]), [["response.created", "queued"], ["response.queued", "queued"]]);
    assert.ok(textOf((await alice.responses.retrieve(created.id)) as unknown as Parameters<typeof textOf>[0]).length < (WORDS + " " + WORDS).length, "stopped before the end");
  });

  it("delete removes a response; unknown ids are 404", async () => {
    const r = await alice.responses.create({ model: "local/echo", input: "to delete" });
    await alice.responses.delete(r.id);
    await assert.rejects(alice.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(alice.responses.delete(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(alice.responses.retrieve("resp_00000000000000000000000000000000"), (e: unknown) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(alice.responses.retrieve("nonsense"), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it("previous_response_id continues the stored conversation", async () => {
    const one = await alice.responses.create({ model: "local/echo", input: "remember me" });
    const two = await alice.responses.create({ model: "local/echo", input: "and me", previous_response_id: one.id });
    assert.equal(two.previous_response_id, one.id);
    assert.equal(two.output_text, "and me");
    const items = await alice.responses.inputItems.list(two.id);
    assert.equal(items.data.length, 1, "input_items lists this response's own input");
    await assert.rejects(
      alice.responses.create({ model: "local/echo", input: "x", previous_response_id: "resp_00000000000000000000000000000000" }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && (e.error as { param?: string }).param === "previous_response_id",
    );
  });

  it("only the key that made a response may read, resume, cancel, delete or continue it (others get 404)", async () => {
    const r = await alice.responses.create({ model: "local/echo", input: "alice's secret", background: true });
    const nf = (e: unknown): boolean => e instanceof OpenAI.NotFoundError;
    await assert.rejects(bob.responses.retrieve(r.id), nf);
    await assert.rejects(bob.responses.retrieve(r.id, { stream: true, starting_after: 0 }), nf);
    await assert.rejects(bob.responses.cancel(r.id), nf);
    await assert.rejects(bob.responses.delete(r.id), nf);
    await assert.rejects(bob.responses.inputItems.list(r.id), nf);
    await assert.rejects(bob.responses.create({ model: "local/echo", input: "x", previous_response_id: r.id }), nf);
    const mine = await alice.responses.retrieve(r.id);
    assert.equal(mine.id, r.id);
  });

  it("bad starting_after values are 400 naming the parameter; past the end of a finished one ends at once", async () => {
    const r = await alice.responses.create({ model: "local/echo", input: "short" });
    for (const bad of ["-1", "1.5", "abc"]) {
      const res = await fetch(`${gw.baseUrl}/responses/${r.id}?stream=true&starting_after=${bad}`, { headers: { authorization: `Bearer ${KEYS[0]!.key}` } });
      assert.equal(res.status, 400, bad);
      const body = (await res.json()) as { error: { param: string; message: string } };
      assert.equal(body.error.param, "starting_after");
      assert.match(body.error.message, /starting_after/);
    }
    const events: Event[] = [];
    for await (const e of (await alice.responses.retrieve(r.id, { stream: true, starting_after: 10_000 })) as AsyncIterable<Event>) events.push(e);
    assert.deepEqual(events, []);
  });

  it("background with store: false is refused naming 'store'", async () => {
    await assert.rejects(
      alice.responses.create({ model: "local/echo", input: "x", background: true, store: false }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param?: string }).param === "store",
    );
  });
});
