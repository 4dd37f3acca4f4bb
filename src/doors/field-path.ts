import type { z } from "zod";

/**
 * `messages[0].content`: a field's path the way OpenAI (and every API shape
 * Spillway speaks) names it in errors, appended to `prefix` (`input[2]` +
 * `call_id` → `input[2].call_id`; `tools` + `[0]` → `tools[0]`). The one
 * formatter of field paths, for every door.
 */
export function fieldPath(path: ReadonlyArray<PropertyKey>, prefix = ""): string {
  let out = prefix;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** A zod failure described for a client: the field at fault, whether it was missing, and a message naming it. */
export interface FieldProblem {
  readonly param: string;
  readonly missing: boolean;
  readonly message: string;
}

/** The value at `path` inside `value`, or undefined. */
function at(value: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = value;
  for (const k of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * The first issue of a zod error for `input` as a {@link FieldProblem}, its
 * path under `prefix`. "Missing" is read off the input itself (zod 4 does not
 * put the offending value in its issues).
 */
export function fieldProblem(error: z.ZodError, input: unknown, prefix = ""): FieldProblem {
  const issue = error.issues[0]!;
  const param = fieldPath(issue.path, prefix);
  const missing = issue.code === "invalid_type" && at(input, issue.path) === undefined;
  return { param, missing, message: missing ? `Missing required parameter: '${param}'.` : `Invalid '${param || "body"}': ${issue.message}` };
}
