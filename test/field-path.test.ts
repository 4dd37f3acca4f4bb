import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { fieldPath, fieldProblem } from "../src/doors/field-path.js";
import { parseResponses } from "../src/doors/http/shapes/openai-responses/request.js";
import { SpillwayError } from "../src/engine/errors.js";

describe("field paths: one formatter for every door", () => {
  it("formats indexes in brackets and names with dots, under a prefix", () => {
    assert.equal(fieldPath(["messages", 0, "content"]), "messages[0].content");
    assert.equal(fieldPath(["parameters", 0], "tools[0]"), "tools[0].parameters[0]");
    assert.equal(fieldPath([2, "call_id"], "input"), "input[2].call_id");
    assert.equal(fieldPath([], "model"), "model");
  });

  it("describes a missing field and an invalid one (zod 4 issues carry no input: an invalid value was reported missing)", () => {
    const schema = z.object({ a: z.array(z.object({ b: z.number() })) });
    const r = schema.safeParse({ a: [{ b: "x" }] });
    assert.ok(!r.success);
    assert.deepEqual(fieldProblem(r.error, { a: [{ b: "x" }] }), { param: "a[0].b", missing: false, message: `Invalid 'a[0].b': ${r.error.issues[0]!.message}` });
    const m = schema.safeParse({});
    assert.ok(!m.success);
    assert.equal(fieldProblem(m.error, {}).message, "Missing required parameter: 'a'.");
  });

  it("a Responses tool's nested field is named like every other field", () => {
    try {
      parseResponses({ model: "local/echo", input: "hi", tools: [{ type: "function", name: "f", parameters: { type: "object" }, strict: [1] }] });
      assert.fail("expected a 400");
    } catch (e) {
      assert.ok(e instanceof SpillwayError);
      assert.equal(e.param, "tools[0].strict");
    }
  });
});
