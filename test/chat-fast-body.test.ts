/**
 * The chat body's validation fast path (shapes/openai-chat/fast-body.ts)
 * never disagrees with the zod schema: over every field of the schema and a
 * spread of valid and invalid values (and message variants), whatever the
 * fast path accepts, zod accepts too with an equal result (same values, same
 * order of the fields passed upstream); the common bodies do take the fast
 * path; bad bodies still get zod's messages.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fastChatBody } from "../src/doors/http/shapes/openai-chat/fast-body.js";
import { chatCompletionSchema, parseChatCompletion } from "../src/doors/http/shapes/openai-chat/request.js";
import { SpillwayError } from "../src/engine/errors.js";

const KEYS: ReadonlySet<string> = new Set(Object.keys(chatCompletionSchema.shape));
const VALUES: unknown[] = [
  null, true, false, 0, 1, -1, 1.5, 2, 2.5, -2, -2.5, 3, 1e300, 2 ** 53, "", "x", "auto", [], ["a"], ["a", "b", "c", "d", "e"], [1], {}, { include_usage: true },
  { include_usage: null }, { include_usage: false, other: 1 }, { a: "b" }, { a: 1 },
];
const MESSAGES: unknown[] = [
  { role: "user", content: "hi" },
  { role: "user", content: null },
  { role: "user" },
  { role: "user", content: "" },
  { role: "system", content: "s", name: "n" },
  { role: "user", content: "hi", name: null },
  { role: "assistant", content: "a", tool_calls: null },
  { role: "assistant", content: "a", tool_calls: [] },
  { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
  { role: "assistant", content: "a", tool_calls: [{ id: "" }] },
  { role: "assistant", content: "a", tool_calls: "x" },
  { role: "tool", content: "r", tool_call_id: "c1" },
  { role: "tool", content: "r", tool_call_id: null },
  { role: "user", content: [{ type: "text", text: "hi" }] },
  { role: "user", content: 5 },
  { role: "robot", content: "hi" },
  { role: "user", content: "hi", extra: { x: 1 } },
  "not an object",
  null,
];

function base(): Record<string, unknown> {
  return { model: "up/m", messages: [{ role: "user", content: "hi" }] };
}

/** Checks one body: a fast accept implies zod's equal accept. Returns whether the fast path took it. */
function agree(body: unknown): boolean {
  const fast = fastChatBody<Record<string, unknown>>(body, KEYS);
  if (fast === undefined) return false;
  const z = chatCompletionSchema.safeParse(body);
  assert.ok(z.success, `zod refuses a body the fast path accepted: ${JSON.stringify(body)}: ${z.success ? "" : z.error.message}`);
  assert.deepEqual(z.data, fast, JSON.stringify(body));
  const unknown = (o: object): string[] => Object.keys(o).filter((k) => !KEYS.has(k));
  assert.deepEqual(unknown(z.data), unknown(fast));
  return true;
}

describe("chat body fast path", () => {
  it("agrees with zod on every schema field × a spread of values", () => {
    let fast = 0;
    let total = 0;
    for (const key of [...KEYS, "unknown_field"]) {
      for (const v of VALUES) {
        total++;
        if (agree({ ...base(), [key]: v })) fast++;
      }
    }
    for (const m of MESSAGES) {
      total += 3;
      if (agree({ ...base(), messages: [m] })) fast++;
      if (agree({ ...base(), messages: [{ role: "system", content: "s" }, m] })) fast++;
      if (agree({ ...base(), messages: [m], stream: true, temperature: 0.5, max_tokens: 10, custom: [1, 2] })) fast++;
    }
    for (const odd of [null, [], "x", 5, {}, { model: "" , messages: [] }, { model: "m" }, { messages: [{ role: "user", content: "x" }] }, JSON.parse('{"model":"m","messages":[{"role":"user","content":"x"}],"__proto__":{"a":1}}') as unknown]) {
      total++;
      if (agree(odd)) fast++;
    }
    assert.ok(fast > 100 && fast < total, `fast path took ${fast} of ${total} bodies`);
  });

  it("takes the common bodies", () => {
    for (const body of [
      base(),
      { ...base(), stream: true, stream_options: { include_usage: true } },
      { ...base(), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }, { role: "assistant", content: "hello" }, { role: "user", content: "more" }], temperature: 0.7, max_tokens: 256, top_p: 1, stop: ["\n"], user: "u1", seed: 3 },
    ]) {
      assert.equal(fastChatBody(body, KEYS), body);
    }
  });

  it("bodies it gives up on keep zod's messages", () => {
    const cases: Array<[unknown, RegExp, string | undefined]> = [
      [{ ...base(), temperature: 3 }, /temperature/, "temperature"],
      [{ ...base(), messages: [] }, /messages/, "messages"],
      [{ ...base(), messages: [{ role: "robot", content: "x" }] }, /messages\[0\]\.role/, "messages[0].role"],
      [{ model: "m" }, /messages/, "messages"],
    ];
    for (const [body, message, param] of cases) {
      assert.throws(() => parseChatCompletion(body), (e: unknown) => e instanceof SpillwayError && message.test(e.message) && e.param === param);
    }
  });

  it("gives the engine the same request either way", () => {
    const body = { ...base(), stream: true, temperature: 0.2, logit_bias: { "1": 2 }, custom: "x" };
    const viaFast = parseChatCompletion(body);
    const z = chatCompletionSchema.parse(body);
    assert.deepEqual(z, body);
    assert.deepEqual(viaFast.request.extra, { openai: { logit_bias: { "1": 2 }, custom: "x" } });
    assert.equal(viaFast.stream, true);
  });
});
