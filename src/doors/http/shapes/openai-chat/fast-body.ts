/**
 * A validation fast path for the common chat completions body: text
 * messages, sampling fields, `stream`/`stream_options`. It only ever says
 * "certainly valid" (and then the body is returned as it is, which is what
 * zod's loose schema would return for it) or "not sure" (undefined): every
 * other body, every invalid one included, goes through the zod schema, so
 * error messages are zod's, unchanged. zod took about 5% of a non-streamed
 * request's CPU; this check costs a loop over the body's own keys.
 *
 * Keep it in step with `chatCompletionSchema` (request.ts): a field the
 * schema checks and this file does not know makes the fast path give up
 * (see `FIELD`), so a schema change cannot be skipped silently — only made
 * slower until this file learns it. `test/chat-fast-body.test.ts` checks
 * that whatever this accepts, zod accepts with an equal result.
 */

const ROLES: ReadonlySet<unknown> = new Set(["system", "developer", "user", "assistant", "tool"]);

type Check = (v: unknown) => boolean;

const isNullish = (v: unknown): boolean => v === null || v === undefined;
const nullishString: Check = (v) => isNullish(v) || typeof v === "string";
const nullishBoolean: Check = (v) => isNullish(v) || typeof v === "boolean";
const inRange =
  (min: number, max: number): Check =>
  (v) =>
    isNullish(v) || (typeof v === "number" && v >= min && v <= max);
const positiveInt: Check = (v) => isNullish(v) || (Number.isSafeInteger(v) && (v as number) > 0);
const anyInt: Check = (v) => isNullish(v) || Number.isSafeInteger(v);
const plainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The schema's fields this fast path can judge, each with its check; a field
 * of the schema missing here (tools, response_format, metadata…) is judged
 * only when null or absent, else the body goes to zod.
 */
const FIELD: Readonly<Record<string, Check>> = {
  model: (v) => typeof v === "string" && v.length > 0,
  stream: nullishBoolean,
  stream_options: (v) => isNullish(v) || (plainObject(v) && (v["include_usage"] === undefined || typeof v["include_usage"] === "boolean")),
  max_tokens: positiveInt,
  max_completion_tokens: positiveInt,
  temperature: inRange(0, 2),
  top_p: inRange(0, 1),
  n: (v) => isNullish(v) || v === 1,
  stop: (v) => isNullish(v) || typeof v === "string" || (Array.isArray(v) && v.length <= 4 && v.every((s) => typeof s === "string")),
  user: nullishString,
  seed: anyInt,
  service_tier: nullishString,
  presence_penalty: inRange(-2, 2),
  frequency_penalty: inRange(-2, 2),
  parallel_tool_calls: nullishBoolean,
  reasoning_effort: nullishString,
  messages: (v) => Array.isArray(v) && v.length > 0 && v.every(textMessage),
};

/** A message with string (or null / absent) content, no tool calls, and only fields the schema checks as strings. */
function textMessage(m: unknown): boolean {
  if (!plainObject(m)) return false;
  if (!ROLES.has(m["role"])) return false;
  const c = m["content"];
  if (c !== undefined && c !== null && typeof c !== "string") return false;
  const name = m["name"];
  if (name !== undefined && typeof name !== "string") return false;
  const id = m["tool_call_id"];
  if (id !== undefined && typeof id !== "string") return false;
  return isNullish(m["tool_calls"]);
}

/**
 * `body` itself when it is certainly a valid chat completions body of the
 * common kind; undefined when zod must judge it.
 *
 * `known`: the schema's field names. A field of the schema without a check
 * in {@link FIELD} passes only when null; unknown fields pass (the schema is
 * loose). `__proto__` as a key always goes to zod.
 */
export function fastChatBody<T>(body: unknown, known: ReadonlySet<string>): T | undefined {
  if (!plainObject(body)) return undefined;
  if (typeof body["model"] !== "string" || !Array.isArray(body["messages"])) return undefined;
  for (const k in body) {
    if (!Object.hasOwn(body, k) || k === "__proto__") return undefined;
    if (!known.has(k)) continue;
    const check = FIELD[k];
    if (check ? !check(body[k]) : body[k] !== null) return undefined;
  }
  return body as T;
}
