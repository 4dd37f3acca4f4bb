import { isObj, type Obj } from "../shared/json.js";

/**
 * The JSON Schema keywords Gemini's `Schema` (an OpenAPI 3.0 subset) takes,
 * copied as they are or converted; everything else is dropped, since Gemini
 * rejects fields it does not know.
 */
const KEPT = new Set([
  "title",
  "description",
  "nullable",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "default",
  "example",
  "propertyOrdering",
]);

/** `format` values Gemini accepts, per type; other formats are dropped. */
const FORMATS: Readonly<Record<string, readonly string[]>> = {
  STRING: ["enum", "date-time"],
  NUMBER: ["float", "double"],
  INTEGER: ["int32", "int64"],
};

const TYPES = new Set(["string", "number", "integer", "boolean", "array", "object", "null"]);

/** How deep `$ref`s are followed before a recursive schema is cut off (as a plain object). */
const MAX_REF_DEPTH = 8;

/** Definitions a schema's local `$ref`s (`#/$defs/x`, `#/definitions/x`) point into. */
type Defs = ReadonlyMap<string, unknown>;

function definitions(root: Obj): Defs {
  const out = new Map<string, unknown>();
  for (const key of ["$defs", "definitions"]) {
    const d = root[key];
    if (isObj(d)) for (const [name, s] of Object.entries(d)) out.set(`#/${key}/${name}`, s);
  }
  return out;
}

function convertType(t: unknown, out: Obj): void {
  const list = (Array.isArray(t) ? t : [t]).filter((x): x is string => typeof x === "string" && TYPES.has(x));
  const types = list.filter((x) => x !== "null");
  if (list.includes("null")) out["nullable"] = true;
  if (types.length === 1) out["type"] = types[0]!.toUpperCase();
  else if (types.length > 1) out["anyOf"] = types.map((x) => ({ type: x.toUpperCase() }));
}

function convert(s: unknown, defs: Defs, depth: number): Obj {
  if (!isObj(s)) return {};
  const ref = s["$ref"];
  if (typeof ref === "string") {
    const target = defs.get(ref);
    if (target === undefined || depth >= MAX_REF_DEPTH) return { type: "OBJECT" };
    const { $ref: _ref, ...rest } = s;
    return convert({ ...(isObj(target) ? target : {}), ...rest }, defs, depth + 1);
  }
  const out: Obj = {};
  for (const [k, v] of Object.entries(s)) if (KEPT.has(k)) out[k] = v;
  convertType(s["type"], out);
  const allOf = s["allOf"];
  // The schema's own keywords win over its one allOf member's.
  if (Array.isArray(allOf) && allOf.length === 1) Object.assign(out, { ...convert(allOf[0], defs, depth), ...out });
  if ("const" in s && typeof s["const"] === "string") {
    out["enum"] = [s["const"]];
    out["type"] ??= "STRING";
  }
  const en = s["enum"];
  if (Array.isArray(en) && en.length > 0 && en.every((x) => typeof x === "string")) {
    out["enum"] = en;
    out["type"] ??= "STRING";
  }
  if (out["enum"] !== undefined && out["type"] === "STRING") out["format"] = "enum";
  const format = s["format"];
  if (typeof format === "string" && FORMATS[String(out["type"])]?.includes(format)) out["format"] = format;
  const anyOf = s["anyOf"] ?? s["oneOf"];
  if (Array.isArray(anyOf)) {
    const nonNull = anyOf.filter((x) => !(isObj(x) && x["type"] === "null"));
    if (nonNull.length < anyOf.length) out["nullable"] = true;
    if (nonNull.length === 1) Object.assign(out, convert(nonNull[0], defs, depth));
    else if (nonNull.length > 1) out["anyOf"] = nonNull.map((x) => convert(x, defs, depth));
  }
  const props = s["properties"];
  if (isObj(props)) {
    const p: Obj = {};
    for (const [name, sub] of Object.entries(props)) p[name] = convert(sub, defs, depth);
    out["properties"] = p;
    out["type"] ??= "OBJECT";
    const req = s["required"];
    if (Array.isArray(req)) {
      const names = req.filter((r): r is string => typeof r === "string" && r in p);
      if (names.length > 0) out["required"] = names;
    }
  }
  if (isObj(s["items"])) {
    out["items"] = convert(s["items"], defs, depth);
    out["type"] ??= "ARRAY";
  }
  return out;
}

/**
 * Converts a JSON Schema (function parameters, `response_format` schemas)
 * into Gemini's `Schema`: types in upper case, `["T","null"]` and a `null`
 * branch of `anyOf` as `nullable`, `oneOf` as `anyOf`, a one-element
 * `allOf` merged, string `const` as a one-value `enum`, local `$ref`s
 * (`#/$defs/…`, `#/definitions/…`) inlined up to {@link MAX_REF_DEPTH} deep
 * (then a plain `OBJECT`), `required` limited to declared properties.
 * Dropped because Gemini has no such field: `additionalProperties`,
 * `$schema`, `$id`, `$defs`, `definitions`, `$comment`, `exclusiveMinimum`,
 * `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `patternProperties`,
 * `unevaluatedProperties`, `prefixItems` and tuple `items`, `contains`,
 * `not`, `if`/`then`/`else`, `dependentRequired`/`dependentSchemas`,
 * `examples`, `readOnly`/`writeOnly`, `deprecated`, `allOf` of several
 * schemas, non-string `enum` and `const`, and `format`s other than
 * `enum`/`date-time` (strings), `float`/`double`, `int32`/`int64`.
 * Never throws; anything that is not an object becomes `{}`.
 */
export function toGeminiSchema(schema: unknown): Obj {
  return convert(schema, isObj(schema) ? definitions(schema) : new Map(), 0);
}

/**
 * Function `parameters` for Gemini: the converted schema, or undefined when
 * it declares no properties (Gemini refuses an `OBJECT` without any).
 */
export function toGeminiParameters(schema: unknown): Obj | undefined {
  const s = toGeminiSchema(schema);
  const props = s["properties"];
  if (s["type"] === "OBJECT" && (!isObj(props) || Object.keys(props).length === 0)) return undefined;
  return Object.keys(s).length > 0 ? s : undefined;
}
