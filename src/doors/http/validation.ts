import type { z } from "zod";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";

/** `messages[0].content`, the way OpenAI names a field in its errors. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * Validates a request body against a zod schema; a failure becomes a 400
 * `invalid_request_error` whose message and `param` name the field at fault.
 */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new SpillwayError(Code.InvalidArgument, "The request body must be a JSON object.", {
      reason: "invalid_json",
    });
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = fieldPath(issue.path);
  const missing = issue.code === "invalid_type" && issue.input === undefined;
  throw new SpillwayError(
    Code.InvalidArgument,
    missing ? `Missing required parameter: '${param}'.` : `Invalid '${param || "body"}': ${issue.message}`,
    { param: param || undefined, reason: missing ? "missing_required_parameter" : "invalid_value" },
  );
}

/** Parses a JSON body; malformed JSON is a 400 naming the problem. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
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
