/**
 * JSON Schema → Gemini's OpenAPI-subset Schema: what is converted, what is
 * dropped (the README lists the same), recursive `$ref`s cut off.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toGeminiParameters, toGeminiSchema } from "../src/providers/gemini/gemini-schema.js";

describe("gemini schema conversion", () => {
  it("converts types, nullability, oneOf, one-element allOf, const and formats", () => {
    assert.deepEqual(
      toGeminiSchema({
        type: "object",
        properties: {
          a: { type: ["integer", "null"], format: "int64" },
          b: { oneOf: [{ type: "string" }, { type: "number", format: "double" }] },
          c: { allOf: [{ type: "string", description: "from allOf" }], description: "own" },
          d: { const: "x" },
          e: { type: ["string", "number"] },
          f: { type: "string", format: "email" },
          g: { type: "array", items: { type: "boolean" }, minItems: 1 },
        },
      }),
      {
        type: "OBJECT",
        properties: {
          a: { type: "INTEGER", nullable: true, format: "int64" },
          b: { anyOf: [{ type: "STRING" }, { type: "NUMBER", format: "double" }] },
          c: { type: "STRING", description: "own" },
          d: { type: "STRING", enum: ["x"], format: "enum" },
          e: { anyOf: [{ type: "STRING" }, { type: "NUMBER" }] },
          f: { type: "STRING" },
          g: { type: "ARRAY", items: { type: "BOOLEAN" }, minItems: 1 },
        },
      },
    );
  });

  it("drops what Gemini has no field for", () => {
    const dropped = {
      additionalProperties: false,
      $schema: "x",
      $id: "x",
      $comment: "x",
      exclusiveMinimum: 0,
      exclusiveMaximum: 9,
      multipleOf: 2,
      uniqueItems: true,
      patternProperties: {},
      unevaluatedProperties: false,
      prefixItems: [],
      contains: {},
      not: {},
      if: {},
      then: {},
      else: {},
      dependentRequired: {},
      dependentSchemas: {},
      examples: [1],
      readOnly: true,
      writeOnly: false,
      deprecated: true,
      allOf: [{ type: "integer" }, { minimum: 1 }],
      enum: [1, 2],
    };
    assert.deepEqual(toGeminiSchema({ type: "integer", minimum: 0, ...dropped }), { type: "INTEGER", minimum: 0 });
    assert.deepEqual(toGeminiSchema({ type: "array", items: [{ type: "string" }] }), { type: "ARRAY" }, "tuple items are dropped");
  });

  it("inlines local $refs; a recursive one is cut off as a plain object", () => {
    const tree = {
      $defs: { node: { type: "object", properties: { name: { type: "string" }, child: { $ref: "#/$defs/node" } } } },
      $ref: "#/$defs/node",
    };
    let s = toGeminiSchema(tree);
    let depth = 0;
    while (s["properties"]) {
      s = (s["properties"] as Record<string, Record<string, unknown>>)["child"]!;
      depth++;
    }
    assert.deepEqual(s, { type: "OBJECT" });
    assert.equal(depth, 8);
    assert.deepEqual(toGeminiSchema({ definitions: { n: { type: "number" } }, properties: { x: { $ref: "#/definitions/n" }, y: { $ref: "#/nowhere" } } }), {
      type: "OBJECT",
      properties: { x: { type: "NUMBER" }, y: { type: "OBJECT" } },
    });
  });

  it("parameters without properties are left out; required names only declared properties", () => {
    assert.equal(toGeminiParameters({ type: "object", properties: {} }), undefined);
    assert.equal(toGeminiParameters(undefined), undefined);
    assert.deepEqual(toGeminiParameters({ type: "object", properties: { q: { type: "string" } }, required: ["q", "nope"] }), {
      type: "OBJECT",
      properties: { q: { type: "STRING" } },
      required: ["q"],
    });
  });
});
