/**
 * Validates JSON against the schemas of OpenAI's published OpenAPI document
 * (../shared/openai/openapi.yaml), with ajv's JSON Schema 2020-12 build.
 * Where the document is absent (a clone without shared/), `openApi` is
 * undefined and schema tests skip with a message saying so.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";

const path = fileURLToPath(new URL("../../../shared/openai/openapi.yaml", import.meta.url));

/** Why schema tests are skipped, or undefined when they run. */
export const openApiSkip: string | undefined = existsSync(path) ? undefined : `OpenAPI document not found at ${path}`;

/**
 * Makes the document checkable by JSON Schema (see the comments inside).
 * OpenAPI 3.0's `nullable: true` still appears in places of the 3.1
 * document; JSON Schema does not know it, so it is rewritten as a type union
 * with null, which is what it means.
 */
function fixNullable(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(fixNullable);
    return;
  }
  if (!node || typeof node !== "object") return;
  const o = node as Record<string, any>;
  if (o["nullable"] === true) {
    delete o["nullable"];
    if (typeof o["type"] === "string") o["type"] = [o["type"], "null"];
    if (Array.isArray(o["enum"]) && !o["enum"].includes(null)) o["enum"].push(null);
  }
  // The document's unions are meant as "one of these shapes", but several
  // overlap (a user message with a content list is both an EasyInputMessage
  // and an InputMessage), so JSON Schema's exactly-one `oneOf` would refuse
  // values OpenAI accepts: check "at least one" instead.
  if (Array.isArray(o["oneOf"])) {
    o["anyOf"] = o["oneOf"];
    delete o["oneOf"];
  }
  for (const v of Object.values(o)) fixNullable(v);
}

function load(): ((schema: string, value: unknown) => string[]) | undefined {
  if (openApiSkip) return undefined;
  const doc = parse(readFileSync(path, "utf8"));
  fixNullable(doc);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: "openai", components: doc.components }, "openai");
  const cache = new Map<string, ReturnType<typeof ajv.compile>>();
  return (schema, value) => {
    let v = cache.get(schema);
    if (!v) {
      v = ajv.compile({ $ref: `openai#/components/schemas/${schema}` });
      cache.set(schema, v);
    }
    return v(value) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  };
}

/** `validate(schemaName, value)` → list of problems (empty when valid). */
export const openApi = load();

/** Throws with every problem when `value` does not validate against `schema`. */
export function assertSchema(schema: string, value: unknown): void {
  if (!openApi) return;
  const errors = openApi(schema, value);
  if (errors.length > 0) {
    throw new Error(`does not validate against ${schema}:\n  ${errors.slice(0, 10).join("\n  ")}\n${JSON.stringify(value).slice(0, 800)}`);
  }
}
