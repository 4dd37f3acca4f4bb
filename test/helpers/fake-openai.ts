/**
 * A fake OpenAI-compatible upstream on loopback that speaks the real wire
 * protocol (chat/completions and completions SSE, error bodies) and can be
 * told to misbehave: fail before the stream, stall, die mid-stream, send
 * malformed events, close without [DONE]. It records every request and
 * every request the gateway aborted.
 */
import type { ServerResponse } from "node:http";
import { startRecordingServer, type RecordedRequest } from "./recording-server.js";

/** What the fake does for one request. */
export interface FakeScript {
  /** Non-2xx status sent instead of a stream, with `errorBody`. */
  status?: number;
  errorBody?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before sending headers (upstream timeout). */
  headerDelayMs?: number;
  /** Events: objects are sent as `data: JSON`, strings as raw SSE text. */
  events?: Array<unknown>;
  /** Pause between events. */
  delayMs?: number;
  /** After this many events: stop sending but keep the connection open. */
  stallAfter?: number;
  /** After this many events: destroy the socket. */
  destroyAfter?: number;
  /** Send `data: [DONE]` at the end (default true). */
  done?: boolean;
  /** Before sending event `index`, wait for `until` (e.g. until every concurrent stream is open). */
  gate?: { index: number; until: Promise<void> };
  /** Wait for 'drain' when a write is refused, as a real server would (default: write regardless). */
  respectBackpressure?: boolean;
  /** Called after each event write with what `res.write` returned. */
  onWrite?: (ok: boolean) => void;
  /** Answer with this JSON (non-streaming endpoints such as /models). */
  json?: unknown;
}

export type { RecordedRequest };

/** The running fake. */
export interface FakeUpstream {
  /** Base URL including `/v1`. */
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  /** Decides what to do per request; replace freely between tests. */
  script: (req: RecordedRequest) => FakeScript;
  /** Resolves when the next request is aborted by the gateway. */
  nextAbort(): Promise<RecordedRequest>;
  close(): Promise<void>;
}

/** A chat.completion.chunk with a text delta. */
export function chatChunk(content: string | null, extra: Record<string, unknown> = {}, finish: string | null = null): unknown {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-fake",
    choices: [{ index: 0, delta: content === null ? extra : { content, ...extra }, finish_reason: finish }],
  };
}

/** A usage-only chunk, as OpenAI sends with include_usage; `reasoning` fills `completion_tokens_details.reasoning_tokens`. */
export function usageChunk(prompt: number, completion: number, reasoning?: number): unknown {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-fake",
    choices: [],
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      ...(reasoning === undefined ? {} : { completion_tokens_details: { reasoning_tokens: reasoning } }),
    },
  };
}

/**
 * A streamed answer that reasons first, as OpenAI-compatible reasoning
 * servers send it: `reasoning` pieces in `delta.reasoning_content` (DeepSeek,
 * vLLM) or `delta.reasoning` (OpenRouter, Ollama) with `content: null`, then
 * the answer, then usage with the reasoning tokens.
 */
export function reasoningChatEvents(
  reasoning: string[],
  parts: string[],
  field: "reasoning_content" | "reasoning" = "reasoning_content",
  usage: [number, number, number] = [5, reasoning.length + parts.length, reasoning.length],
): unknown[] {
  return [
    chatChunk(null, { role: "assistant", content: null }),
    ...reasoning.map((r) => chatChunk(null, { content: null, [field]: r })),
    ...parts.map((p) => chatChunk(p)),
    chatChunk(null, {}, "stop"),
    usageChunk(usage[0], usage[1], usage[2]),
  ];
}

/** A normal streamed chat answer made of `parts`. */
export function chatEvents(parts: string[], usage: [number, number] = [5, parts.length]): unknown[] {
  return [
    chatChunk("", { role: "assistant" }),
    ...parts.map((p) => chatChunk(p)),
    chatChunk(null, {}, "stop"),
    usageChunk(usage[0], usage[1]),
  ];
}

/** A legacy completions chunk. */
export function completionChunk(text: string, finish: string | null = null): unknown {
  return { id: "cmpl-fake", object: "text_completion", created: 1, model: "gpt-fake", choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function answer(_req: RecordedRequest, res: ServerResponse, s: FakeScript): Promise<void> {
  if (s.headerDelayMs) await sleep(s.headerDelayMs);
  if (res.destroyed) return;
  if (s.json !== undefined) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(s.json));
    return;
  }
  if (s.status && s.status >= 300) {
    res.writeHead(s.status, { "content-type": "application/json", ...s.headers });
    res.end(JSON.stringify(s.errorBody ?? { error: { message: `fake failure ${s.status}`, type: "server_error", param: null, code: null } }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...s.headers });
  res.flushHeaders();
  const events = s.events ?? chatEvents(["Hello", " world"]);
  for (let i = 0; i < events.length; i++) {
    if (s.stallAfter === i) return; // keep the connection open, send nothing more
    if (s.destroyAfter === i) {
      res.socket?.destroy();
      return;
    }
    if (s.gate?.index === i) await s.gate.until;
    if (res.destroyed) return;
    const e = events[i];
    const ok = res.write(typeof e === "string" ? e : `data: ${JSON.stringify(e)}\n\n`);
    s.onWrite?.(ok);
    if (!ok && s.respectBackpressure) {
      await new Promise<void>((r) => {
        const done = (): void => {
          res.off("drain", done);
          res.off("close", done);
          r();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
    if (s.delayMs) await sleep(s.delayMs);
  }
  if (s.done !== false) res.write("data: [DONE]\n\n");
  res.end();
}

/** Starts the fake on a free loopback port. */
export async function startFakeOpenAi(script: FakeUpstream["script"] = () => ({})): Promise<FakeUpstream> {
  const server = await startRecordingServer((rec, res) => void answer(rec, res, fake.script(rec)).catch(() => undefined));
  const fake: FakeUpstream = {
    baseUrl: `http://127.0.0.1:${server.port}/v1`,
    requests: server.requests,
    script,
    nextAbort: server.nextAbort,
    close: server.close,
  };
  return fake;
}
