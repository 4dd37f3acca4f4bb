import type { z } from "zod";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { fieldProblem } from "../field-path.js";

/**
 * Validates `value` against `schema`; a failure is a 400 whose message and
 * `param` name the field at fault by its full path, `prefix` included
 * (`input[2].call_id`).
 */
export function validateAt<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const p = fieldProblem(r.error, value, prefix);
  throw new SpillwayError(Code.InvalidArgument, p.message, {
    param: p.param || undefined,
    reason: p.missing ? "missing_required_parameter" : "invalid_value",
  });
}

/**
 * Validates a request body (a JSON object) against a zod schema; a failure
 * becomes a 400 whose message and `param` name the field at fault.
 */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new SpillwayError(Code.InvalidArgument, "The request body must be a JSON object.", {
      reason: "invalid_json",
    });
  }
  return validateAt(schema, body, "");
}

/** Parses a JSON body; malformed JSON is a 400 naming the problem. */
export function parseJson(body: Buffer): unknown {
  return parseJsonText(body.toString("utf8"));
}

/** {@link parseJson} for a body already decoded as UTF-8 text (`HttpExchange.readBodyText`). */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new SpillwayError(
      Code.InvalidArgument,
      `We could not parse the JSON body of your request (${(e as Error).message}).`,
      { reason: "invalid_json" },
    );
  }
}

/** Drops the given keys; what remains is passed to providers as `extra`. */
export function extraFields(body: Record<string, unknown>, known: ReadonlySet<string>): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const k in body) {
    if (known.has(k) || body[k] === undefined) continue;
    (extra ??= {})[k] = body[k];
  }
  return extra;
}
