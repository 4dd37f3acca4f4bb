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

/**
 * The whole answer a real OpenAI server sends for a non-streamed request
 * (`stream` false or absent): the scripted chunks folded into one
 * `chat.completion` (or `text_completion`) — content joined, tool calls
 * merged by index, the finish reason, the usage.
 */
export function wholeAnswer(events: readonly unknown[], legacy: boolean): Record<string, unknown> {
  let content = "";
  let reasoning = "";
  let finish: string | null = null;
  let usage: unknown;
  const calls: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }> = [];
  for (const e of events) {
    if (typeof e !== "object" || e === null) continue;
    const j = e as { choices?: Array<Record<string, any>>; usage?: unknown };
    if (j.usage) usage = j.usage;
    const c = j.choices?.[0];
    if (!c) continue;
    if (c["finish_reason"]) finish = c["finish_reason"] as string;
    if (legacy) content += (c["text"] as string | undefined) ?? "";
    const d = c["delta"] as Record<string, any> | undefined;
    if (!d) continue;
    content += (d["content"] as string | null | undefined) ?? "";
    reasoning += (d["reasoning_content"] as string | undefined) ?? "";
    for (const tc of (d["tool_calls"] as Array<Record<string, any>> | undefined) ?? []) {
      const call = (calls[tc["index"] as number] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
      if (tc["id"]) call.id = tc["id"] as string;
      if (tc["function"]?.name) call.function.name = tc["function"].name as string;
      call.function.arguments += (tc["function"]?.arguments as string | undefined) ?? "";
    }
  }
  if (legacy) {
    return { id: "cmpl-fake", object: "text_completion", created: 1, model: "gpt-fake", choices: [{ text: content, index: 0, logprobs: null, finish_reason: finish ?? "stop" }], usage };
  }
  const message: Record<string, unknown> = { role: "assistant", content: content || null, refusal: null };
  if (reasoning) message["reasoning_content"] = reasoning;
  if (calls.length > 0) message["tool_calls"] = calls.filter(Boolean);
  return { id: "chatcmpl-fake", object: "chat.completion", created: 1, model: "gpt-fake", choices: [{ index: 0, message, logprobs: null, finish_reason: finish ?? "stop" }], usage };
}

async function answer(req: RecordedRequest, res: ServerResponse, s: FakeScript): Promise<void> {
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
  const body = req.body as { stream?: unknown } | undefined;
  const path = req.url.split("?")[0] ?? "";
  if (typeof body === "object" && body !== null && body.stream !== true && (path.endsWith("/chat/completions") || path.endsWith("/completions"))) {
    // Non-streamed, as the real API answers it: one JSON body.
    const events = (s.events ?? chatEvents(["Hello", " world"])).filter((e) => typeof e === "object");
    res.writeHead(200, { "content-type": "application/json", ...s.headers }).end(JSON.stringify(wholeAnswer(events, !path.endsWith("/chat/completions"))));
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
