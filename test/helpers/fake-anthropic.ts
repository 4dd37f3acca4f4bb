/**
 * A fake Anthropic Messages API on loopback that speaks the real wire format
 * (`event: <type>` + `data: {"type":<type>,…}` frames, `{"type":"error",…}`
 * error bodies) and can be told to misbehave: fail before the stream with
 * any status (429, 401, 529…), send an `event: error` mid-stream, stall, die,
 * or end without `message_stop`. It records every request and every request
 * the gateway aborted.
 */
import type { ServerResponse } from "node:http";
import type Anthropic from "@anthropic-ai/sdk";
import { startRecordingServer, type RecordedRequest } from "./recording-server.js";

/** What the fake does for one request. */
export interface AnthropicScript {
  /** Non-2xx status sent instead of a stream, with an Anthropic error body of `errorType`. */
  status?: number;
  errorType?: string;
  errorMessage?: string;
  headers?: Record<string, string>;
  /** Events: objects are sent as `event: <their type>` + `data: JSON`, strings as raw SSE text. */
  events?: Array<unknown>;
  /** Pause between events. */
  delayMs?: number;
  /** After this many events: stop sending but keep the connection open. */
  stallAfter?: number;
  /** After this many events: destroy the socket. */
  destroyAfter?: number;
}

/** A request the fake received. */
export type RecordedAnthropicRequest = RecordedRequest;

/** The running fake. */
export interface FakeAnthropic {
  /** Base URL without `/v1`, as ANTHROPIC_BASE_URL. */
  readonly baseUrl: string;
  readonly requests: RecordedAnthropicRequest[];
  /** Decides what to do per request; replace freely between tests. */
  script: (req: RecordedAnthropicRequest) => AnthropicScript;
  /** Resolves when the next request is aborted by the gateway. */
  nextAbort(): Promise<RecordedAnthropicRequest>;
  close(): Promise<void>;
}

/** `message_start` with an empty assistant message and the input usage. */
export function messageStart(inputTokens = 10, model = "claude-fake-1"): unknown {
  return {
    type: "message_start",
    message: {
      id: "msg_fake01",
      type: "message",
      role: "assistant",
      content: [],
      model,
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
    },
  };
}

/** The events of one text content block. */
export function textBlock(index: number, parts: string[]): unknown[] {
  return [
    { type: "content_block_start", index, content_block: { type: "text", text: "" } },
    { type: "ping" },
    ...parts.map((text) => ({ type: "content_block_delta", index, delta: { type: "text_delta", text } })),
    { type: "content_block_stop", index },
  ];
}

/** The events of one tool_use content block, its input JSON sent in `pieces`. */
export function toolUseBlock(index: number, id: string, name: string, pieces: string[]): unknown[] {
  return [
    { type: "content_block_start", index, content_block: { type: "tool_use", id, name, input: {} } },
    ...pieces.map((partial_json) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json } })),
    { type: "content_block_stop", index },
  ];
}

/** The events of one `thinking` block: its text in `parts` (`thinking_delta`s), then its `signature_delta`. */
export function thinkingBlock(index: number, parts: string[], signature: string): Anthropic.RawMessageStreamEvent[] {
  return [
    { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } },
    ...parts.map((thinking): Anthropic.RawMessageStreamEvent => ({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking } })),
    { type: "content_block_delta", index, delta: { type: "signature_delta", signature } },
    { type: "content_block_stop", index },
  ];
}

/** The events of one `redacted_thinking` block (its data arrives whole in the start event). */
export function redactedThinkingBlock(index: number, data: string): Anthropic.RawMessageStreamEvent[] {
  return [
    { type: "content_block_start", index, content_block: { type: "redacted_thinking", data } },
    { type: "content_block_stop", index },
  ];
}

/**
 * `message_delta` (stop reason, the stop sequence that matched, cumulative
 * output usage; `thinkingTokens` as `output_tokens_details.thinking_tokens`)
 * and `message_stop`.
 */
export function messageEnd(stopReason: string, outputTokens: number, stopSequence: string | null = null, thinkingTokens?: number): unknown[] {
  const usage = { output_tokens: outputTokens, ...(thinkingTokens === undefined ? {} : { output_tokens_details: { thinking_tokens: thinkingTokens } }) };
  return [
    { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage },
    { type: "message_stop" },
  ];
}

/** A whole streamed text answer. */
export function textAnswer(parts: string[], usage: [number, number] = [10, parts.length]): unknown[] {
  return [messageStart(usage[0]), ...textBlock(0, parts), ...messageEnd("end_turn", usage[1])];
}

/** A mid-stream `event: error` frame. */
export function errorEvent(type = "overloaded_error", message = "Overloaded"): unknown {
  return { type: "error", error: { type, message } };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function frame(e: unknown): string {
  if (typeof e === "string") return e;
  return `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/**
 * The whole Message a real Anthropic server sends for a non-streamed request
 * (`stream` false or absent): the scripted events folded into content
 * blocks, the stop reason and the usage.
 */
export function wholeMessage(events: readonly unknown[]): Record<string, unknown> {
  const blocks: Array<Record<string, any>> = [];
  const json: string[] = [];
  let message: Record<string, any> = { id: "msg_fake", type: "message", role: "assistant", model: "claude-fake-1" };
  let usage: Record<string, unknown> = {};
  let stop: Record<string, unknown> = {};
  for (const e of events) {
    if (typeof e !== "object" || e === null) continue;
    const j = e as Record<string, any>;
    if (j["type"] === "message_start") {
      message = { ...message, ...j["message"] };
      usage = { ...usage, ...j["message"]?.usage };
    } else if (j["type"] === "content_block_start") {
      blocks[j["index"] as number] = { ...j["content_block"] };
      json[j["index"] as number] = "";
    } else if (j["type"] === "content_block_delta") {
      const b = blocks[j["index"] as number]!;
      const d = j["delta"] as Record<string, any>;
      if (d["type"] === "text_delta") b["text"] = `${b["text"] ?? ""}${d["text"]}`;
      if (d["type"] === "thinking_delta") b["thinking"] = `${b["thinking"] ?? ""}${d["thinking"]}`;
      if (d["type"] === "signature_delta") b["signature"] = `${b["signature"] ?? ""}${d["signature"]}`;
      if (d["type"] === "input_json_delta") json[j["index"] as number] += d["partial_json"] as string;
    } else if (j["type"] === "message_delta") {
      stop = { ...j["delta"] };
      usage = { ...usage, ...j["usage"] };
    }
  }
  blocks.forEach((b, i) => {
    if (b["type"] === "tool_use") b["input"] = json[i] ? JSON.parse(json[i]) : (b["input"] ?? {});
  });
  return { ...message, content: blocks.filter(Boolean), stop_reason: stop["stop_reason"] ?? "end_turn", stop_sequence: stop["stop_sequence"] ?? null, usage };
}

async function answer(res: ServerResponse, s: AnthropicScript, stream = true): Promise<void> {
  if (s.status && s.status >= 300) {
    res.writeHead(s.status, { "content-type": "application/json", "request-id": "req_fake", ...s.headers });
    res.end(JSON.stringify({ type: "error", error: { type: s.errorType ?? "api_error", message: s.errorMessage ?? `fake failure ${s.status}` } }));
    return;
  }
  if (!stream) {
    // Non-streamed, as the real API answers it: one Message, or the error a stream would have ended with, as a status.
    const events = s.events ?? [];
    const failed = events.find((e) => typeof e === "object" && e !== null && (e as { type?: unknown }).type === "error") as { error: { type: string } } | undefined;
    if (failed) {
      const status: Record<string, number> = { overloaded_error: 529, rate_limit_error: 429, api_error: 500, invalid_request_error: 400 };
      res.writeHead(status[failed.error.type] ?? 500, { "content-type": "application/json", "request-id": "req_fake" }).end(JSON.stringify(failed));
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "request-id": "req_fake", ...s.headers });
    res.end(JSON.stringify(wholeMessage(s.events ?? textAnswer(["Hello", " from", " Claude"]))));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": "req_fake", ...s.headers });
  res.flushHeaders();
  const events = s.events ?? textAnswer(["Hello", " from", " Claude"]);
  for (let i = 0; i < events.length; i++) {
    if (s.stallAfter === i) return;
    if (s.destroyAfter === i) {
      res.socket?.destroy();
      return;
    }
    if (res.destroyed) return;
    res.write(frame(events[i]));
    if (s.delayMs) await sleep(s.delayMs);
  }
  res.end();
}

/** Starts the fake on a free loopback port. */
/**
 * Anthropic's rule for extended thinking in a tool loop, as its API words the
 * 400: with `thinking` enabled, the last assistant message, when tool results
 * follow it, must start with a `thinking` or `redacted_thinking` block.
 */
function thinkingRefusal(body: unknown): string | undefined {
  const b = body as { thinking?: { type?: string }; messages?: Array<{ role: string; content: unknown }> } | undefined;
  if (b?.thinking?.type !== "enabled" || !Array.isArray(b.messages)) return undefined;
  const at = b.messages.map((m) => m.role).lastIndexOf("assistant");
  if (at < 0) return undefined;
  const blocks = (m: { content: unknown }): Array<{ type?: string }> => (Array.isArray(m.content) ? (m.content as Array<{ type?: string }>) : [{ type: "text" }]);
  if (!b.messages.slice(at + 1).some((m) => blocks(m).some((x) => x.type === "tool_result"))) return undefined;
  const first = blocks(b.messages[at]!)[0]?.type;
  if (first === "thinking" || first === "redacted_thinking") return undefined;
  return `messages.${at}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${first}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`.`;
}

export async function startFakeAnthropic(script: FakeAnthropic["script"] = () => ({})): Promise<FakeAnthropic> {
  const server = await startRecordingServer((rec, res) => {
    if (rec.method === "GET" && rec.url.startsWith("/v1/models")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: [{ type: "model", id: "claude-fake-1", display_name: "Claude Fake" }], has_more: false }));
      return;
    }
    const body = rec.body as { stream?: unknown } | undefined;
    const refusal = thinkingRefusal(rec.body);
    if (refusal) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: refusal } }));
      return;
    }
    void answer(res, fake.script(rec), typeof body !== "object" || body === null || body.stream === true).catch(() => undefined);
  });
  const fake: FakeAnthropic = {
    baseUrl: `http://127.0.0.1:${server.port}`,
    requests: server.requests,
    script,
    nextAbort: server.nextAbort,
    close: server.close,
  };
  return fake;
}
