/**
 * A checker for Anthropic Messages SSE streams, written from the SDK's
 * types (`RawMessageStreamEvent` in @anthropic-ai/sdk's
 * resources/messages/messages.ts) and the streaming reference: every frame
 * has an `event:` line equal to its data's `type`; `message_start` comes
 * first with an empty assistant message and usage; content blocks are
 * numbered from 0 without gaps, one open at a time, each started, given
 * deltas of its own kind and stopped; `message_delta` (stop reason, stop
 * sequence, usage) comes with no block open, then `message_stop` last;
 * `ping`s may come anywhere after `message_start`; an `error` event is
 * terminal. Throws an AssertionError naming the frame at fault.
 */
import assert from "node:assert/strict";

/** One SSE frame: its `event:` name and its parsed data. */
export interface AnthropicFrame {
  readonly event: string;
  readonly data: any;
}

/** Splits raw SSE text into frames (every frame must have exactly one `event:` and one `data:` line). */
export function parseAnthropicSse(text: string): AnthropicFrame[] {
  const frames: AnthropicFrame[] = [];
  for (const raw of text.split("\n\n")) {
    if (!raw.trim()) continue;
    const lines = raw.split("\n");
    const event = lines.filter((l) => l.startsWith("event: ")).map((l) => l.slice(7));
    const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
    assert.equal(event.length, 1, `a frame without exactly one event: line: ${JSON.stringify(raw)}`);
    assert.equal(data.length, 1, `a frame without exactly one data: line: ${JSON.stringify(raw)}`);
    frames.push({ event: event[0]!, data: JSON.parse(data[0]!) });
  }
  return frames;
}

const STOP_REASONS = new Set(["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"]);
const ERROR_TYPES = new Set([
  "invalid_request_error",
  "authentication_error",
  "billing_error",
  "permission_error",
  "not_found_error",
  "request_too_large",
  "rate_limit_error",
  "api_error",
  "timeout_error",
  "overloaded_error",
]);

const isNum = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isStr = (v: unknown): boolean => typeof v === "string";

/** Checks an Anthropic error body: `{"type":"error","error":{"type","message"}}` with a known type. */
export function assertAnthropicError(body: any, type?: string): void {
  assert.equal(body?.type, "error", JSON.stringify(body));
  assert.ok(ERROR_TYPES.has(body.error?.type), `unknown error type in ${JSON.stringify(body)}`);
  assert.ok(isStr(body.error.message) && body.error.message.length > 0, JSON.stringify(body));
  assert.deepEqual(Object.keys(body).sort(), ["error", "type"]);
  if (type) assert.equal(body.error.type, type, JSON.stringify(body));
}

function checkUsage(u: any, where: string, inputRequired: boolean): void {
  assert.ok(u && typeof u === "object", `${where}: usage missing`);
  assert.ok(isNum(u.output_tokens), `${where}: usage.output_tokens`);
  if (inputRequired || u.input_tokens != null) assert.ok(isNum(u.input_tokens), `${where}: usage.input_tokens`);
  for (const k of ["cache_creation_input_tokens", "cache_read_input_tokens"]) if (u[k] != null) assert.ok(isNum(u[k]), `${where}: usage.${k}`);
}

function checkStartBlock(b: any, where: string): string {
  switch (b?.type) {
    case "text":
      assert.ok(isStr(b.text), `${where}: text block without text`);
      break;
    case "thinking":
      assert.ok(isStr(b.thinking), `${where}: thinking block without thinking`);
      if (b.signature !== undefined) assert.ok(isStr(b.signature), `${where}: signature`);
      break;
    case "redacted_thinking":
      assert.ok(isStr(b.data) && b.data.length > 0, `${where}: redacted_thinking without data`);
      break;
    case "tool_use":
      assert.ok(isStr(b.id) && b.id.length > 0, `${where}: tool_use without id`);
      assert.ok(isStr(b.name) && b.name.length > 0, `${where}: tool_use without name`);
      assert.ok(b.input && typeof b.input === "object" && !Array.isArray(b.input), `${where}: tool_use input`);
      break;
    default:
      assert.fail(`${where}: unknown content block type ${JSON.stringify(b?.type)}`);
  }
  return b.type;
}

const DELTA_FOR: Record<string, Record<string, string>> = {
  text: { text_delta: "text" },
  thinking: { thinking_delta: "thinking", signature_delta: "signature" },
  tool_use: { input_json_delta: "partial_json" },
  redacted_thinking: {},
};

/** What a checked stream ended with. */
export interface CheckedStream {
  readonly frames: AnthropicFrame[];
  /** The content blocks' types, in order. */
  readonly blocks: string[];
  /** The `message_delta` frame's data, when the stream completed. */
  readonly messageDelta: any;
  /** The `error` frame's data, when the stream failed. */
  readonly error: any;
}

/** Checks every frame of a Messages stream (see the file comment); returns what it saw. */
export function assertAnthropicStream(text: string): CheckedStream {
  const frames = parseAnthropicSse(text);
  assert.ok(frames.length > 0, "an empty stream");
  const blocks: string[] = [];
  let open: { index: number; type: string } | undefined;
  let messageDelta: any;
  let error: any;
  let ended = false;
  frames.forEach((f, i) => {
    const where = `frame ${i} (${f.event})`;
    assert.ok(!ended, `${where}: an event after the end of the stream`);
    assert.equal(f.data.type, f.event, `${where}: data.type differs from the event line`);
    if (i === 0) assert.equal(f.event, "message_start", "the first event must be message_start");
    switch (f.event) {
      case "message_start": {
        assert.equal(i, 0, `${where}: a second message_start`);
        const m = f.data.message;
        assert.ok(isStr(m.id) && m.id.length > 0, `${where}: message.id`);
        assert.equal(m.type, "message");
        assert.equal(m.role, "assistant");
        assert.ok(isStr(m.model), `${where}: message.model`);
        assert.deepEqual(m.content, []);
        assert.equal(m.stop_reason, null);
        assert.equal(m.stop_sequence, null);
        checkUsage(m.usage, where, true);
        break;
      }
      case "ping":
        assert.deepEqual(f.data, { type: "ping" });
        break;
      case "content_block_start":
        assert.equal(open, undefined, `${where}: a block started while block ${open?.index} is open`);
        assert.equal(f.data.index, blocks.length, `${where}: block index not contiguous`);
        blocks.push(checkStartBlock(f.data.content_block, where));
        open = { index: f.data.index, type: blocks.at(-1)! };
        break;
      case "content_block_delta": {
        assert.ok(open, `${where}: a delta with no block open`);
        assert.equal(f.data.index, open.index, `${where}: a delta for another block`);
        const field = DELTA_FOR[open.type]![f.data.delta?.type];
        assert.ok(field, `${where}: delta type ${f.data.delta?.type} in a ${open.type} block`);
        assert.ok(isStr(f.data.delta[field]), `${where}: delta.${field}`);
        break;
      }
      case "content_block_stop":
        assert.ok(open, `${where}: a stop with no block open`);
        assert.equal(f.data.index, open.index, `${where}: stop for another block`);
        open = undefined;
        break;
      case "message_delta":
        assert.equal(open, undefined, `${where}: message_delta with block ${open?.index} open`);
        assert.equal(messageDelta, undefined, `${where}: a second message_delta`);
        assert.ok(STOP_REASONS.has(f.data.delta.stop_reason), `${where}: stop_reason ${f.data.delta.stop_reason}`);
        assert.ok(f.data.delta.stop_sequence === null || isStr(f.data.delta.stop_sequence), `${where}: stop_sequence`);
        if (f.data.delta.stop_reason === "stop_sequence") assert.ok(isStr(f.data.delta.stop_sequence), `${where}: stop_sequence missing`);
        checkUsage(f.data.usage, where, false);
        messageDelta = f.data;
        break;
      case "message_stop":
        assert.ok(messageDelta, `${where}: message_stop before message_delta`);
        ended = true;
        break;
      case "error":
        assertAnthropicError(f.data);
        error = f.data;
        ended = true;
        break;
      default:
        assert.fail(`${where}: unknown event`);
    }
  });
  assert.ok(ended, "the stream ended without message_stop or error");
  return { frames, blocks, messageDelta, error };
}

/**
 * A `fetch` for the Anthropic SDK that keeps a copy of every response body
 * (the SDK reads the original), so a test can check the exact events the
 * SDK was given.
 */
export function recordingFetch(): { fetch: typeof fetch; bodies: Array<Promise<string>> } {
  const bodies: Array<Promise<string>> = [];
  const f: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    bodies.push(res.clone().text().catch(() => ""));
    return res;
  };
  return { fetch: f, bodies };
}
