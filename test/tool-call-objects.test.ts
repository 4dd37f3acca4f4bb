/**
 * `toolCallObjects`, the one parser of replayed tool-call arguments for the
 * vendors that carry them as JSON objects (Anthropic, Bedrock, Gemini).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { makeMessage } from "../src/engine/requests.js";
import { toolCallObjects } from "../src/providers/shared/request-fields.js";

const call = (args: string) => makeMessage({ role: "assistant", toolCalls: [{ id: "c0", name: "ok", arguments: "{}" }, { id: "c1", name: "f", arguments: args }] });

describe("toolCallObjects", () => {
  it("parses each call's arguments; empty arguments are {}", () => {
    assert.deepEqual(toolCallObjects(call('{"a":[1,2]}'), 3, "Bedrock"), [
      { id: "c0", name: "ok", input: {} },
      { id: "c1", name: "f", input: { a: [1, 2] } },
    ]);
    assert.deepEqual(toolCallObjects(call("  "), 0, "Gemini")[1]!.input, {});
  });

  for (const bad of ["[1,2", "[1,2]", "3", "null", '"s"']) {
    it(`refuses ${bad} as invalid, naming the call and the vendor`, () => {
      assert.throws(
        () => toolCallObjects(call(bad), 4, "Gemini"),
        (e: unknown) => {
          assert.ok(e instanceof SpillwayError);
          assert.equal(e.code, Code.InvalidArgument);
          assert.equal(e.param, "messages[4].tool_calls[1].function.arguments");
          assert.match(e.message, /Gemini models need tool call arguments as a JSON object/);
          return true;
        },
      );
    });
  }
});
