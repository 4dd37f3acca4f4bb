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

async function answer(res: ServerResponse, s: AnthropicScript): Promise<void> {
  if (s.status && s.status >= 300) {
    res.writeHead(s.status, { "content-type": "application/json", "request-id": "req_fake", ...s.headers });
    res.end(JSON.stringify({ type: "error", error: { type: s.errorType ?? "api_error", message: s.errorMessage ?? `fake failure ${s.status}` } }));
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
export async function startFakeAnthropic(script: FakeAnthropic["script"] = () => ({})): Promise<FakeAnthropic> {
  const server = await startRecordingServer((rec, res) => {
    if (rec.method === "GET" && rec.url.startsWith("/v1/models")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: [{ type: "model", id: "claude-fake-1", display_name: "Claude Fake" }], has_more: false }));
      return;
    }
    void answer(res, fake.script(rec)).catch(() => undefined);
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
