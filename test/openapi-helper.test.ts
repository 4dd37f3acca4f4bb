/** The schema checks other tests rely on really reject what is wrong. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertSchema, openApiSkip } from "./helpers/openapi.js";

describe("OpenAPI schema helper", { skip: openApiSkip }, () => {
  it("accepts a valid chunk and rejects broken ones", () => {
    const ok = {
      id: "x",
      object: "chat.completion.chunk",
      created: 1,
      model: "m",
      choices: [{ index: 0, delta: { content: "a" }, finish_reason: null }],
    };
    assertSchema("CreateChatCompletionStreamResponse", ok);
    assert.throws(() => assertSchema("CreateChatCompletionStreamResponse", { ...ok, object: "chat.completion" }));
    assert.throws(() => assertSchema("CreateChatCompletionStreamResponse", { ...ok, choices: [{ index: 0, delta: {}, finish_reason: "done" }] }));
    assert.throws(() => assertSchema("ErrorResponse", { error: { message: "x" } }));
  });
});
