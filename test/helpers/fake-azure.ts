/**
 * A fake Azure OpenAI resource on loopback that checks what Azure checks —
 * the route (`/openai/deployments/{deployment}/…?api-version=…`, or the
 * `/openai/v1/…` surface), a known deployment, a supported `api-version`,
 * the `api-key` header (or an Entra ID bearer token) — and answers like
 * Azure: 401/404 error bodies with Azure's `{"error":{"code","message"}}`,
 * streams whose first chunk has empty `choices`, `id` and `object` with only
 * `prompt_filter_results`, `content_filter_results` on every choice, usage
 * only when `stream_options.include_usage` was sent. Faults: any status,
 * a filtered answer, a cut body, a stall.
 */
import type { ServerResponse } from "node:http";
import { startRecordingServer, type RecordedRequest } from "./recording-server.js";

/** What the fake does for one (authorized, well-routed) request. */
export interface AzureScript {
  status?: number;
  errorBody?: unknown;
  headers?: Record<string, string>;
  /** Text pieces of the answer (default `["Hello", " from Azure"]`). */
  parts?: string[];
  /** Raw chunks instead of `parts` (objects as `data: JSON`, strings as raw SSE text). */
  chunks?: unknown[];
  /** Send `data: [DONE]` at the end (default true; a Responses stream has none). */
  done?: boolean;
  /** After this many chunks: destroy the socket. */
  destroyAfter?: number;
  delayMs?: number;
  /** Answer with this JSON (non-streamed routes). */
  json?: unknown;
}

/** The running fake. */
export interface FakeAzure {
  /** `http://127.0.0.1:PORT`, as AZURE_OPENAI_ENDPOINT. */
  readonly endpoint: string;
  readonly requests: RecordedRequest[];
  script: (req: RecordedRequest) => AzureScript;
  nextAbort(): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const SAFE = { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" }, violence: { filtered: false, severity: "safe" } };

/** Content-filter results with `category` filtered at `severity`. */
export function filtered(category: string, severity = "high"): Record<string, unknown> {
  return { ...SAFE, [category]: { filtered: true, severity } };
}

/** Azure's first chunk: nothing but the prompt's filter results. */
export function promptFilterChunk(results: Record<string, unknown> = SAFE): unknown {
  return { choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: [{ prompt_index: 0, content_filter_results: results }] };
}

/** A chunk of one choice with Azure's per-choice filter results. */
export function azureChunk(delta: Record<string, unknown>, finish: string | null = null, results: Record<string, unknown> = SAFE): unknown {
  return {
    choices: [{ content_filter_results: finish ? {} : results, delta, finish_reason: finish, index: 0, logprobs: null }],
    created: 1733000000,
    id: "chatcmpl-azure1",
    model: "gpt-4o-2024-08-06",
    object: "chat.completion.chunk",
    system_fingerprint: "fp_azure",
  };
}

/** The usage chunk Azure sends last when include_usage was asked. */
export function azureUsage(prompt: number, completion: number): unknown {
  return { choices: [], created: 1733000000, id: "chatcmpl-azure1", model: "gpt-4o-2024-08-06", object: "chat.completion.chunk", usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } };
}

/** API versions the fake knows (a sample of Azure's GA and preview versions). */
const VERSIONS = new Set(["2024-06-01", "2024-10-21", "2025-03-01-preview", "2025-04-01-preview"]);

function azureError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json", "apim-request-id": "fake" });
  res.end(JSON.stringify({ error: { code, message } }));
}

/** Starts the fake; `deployments` are the names it serves, `key` and `token` the credentials it accepts. */
export async function startFakeAzure(
  script: FakeAzure["script"] = () => ({}),
  opts: { deployments?: string[]; key?: string; token?: string } = {},
): Promise<FakeAzure> {
  const deployments = new Set(opts.deployments ?? ["gpt4o-prod", "tts-prod"]);
  const key = opts.key ?? "azure-key-1";
  const token = opts.token ?? "entra-token-1";
  let current = script;
  const server = await startRecordingServer((rec, res) => {
    const url = new URL(rec.url, "http://fake");
    const auth = rec.headers["api-key"] === key || rec.headers["authorization"] === `Bearer ${token}`;
    if (!auth) {
      azureError(res, 401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.");
      return;
    }
    if (rec.method === "GET" && url.pathname === "/openai/deployments" && url.searchParams.get("api-version") === "2022-12-01") {
      const data = [...deployments].map((id) => ({ id, model: id.startsWith("tts") ? "tts-1" : "gpt-4o", owner: "organization-owner", object: "deployment", status: "succeeded", scale_settings: { scale_type: "standard" } }));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data, object: "list" }));
      return;
    }
    const v1 = /^\/openai\/v1\/(chat\/completions|completions|responses|audio\/speech|audio\/transcriptions)$/.exec(url.pathname);
    const dep = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|audio\/speech|audio\/transcriptions)$/.exec(url.pathname);
    if (!v1 && !dep) {
      azureError(res, 404, "404", "Resource not found");
      return;
    }
    if (dep) {
      const version = url.searchParams.get("api-version");
      if (!version || !VERSIONS.has(version)) {
        azureError(res, 404, "404", "Resource not found");
        return;
      }
      if (!deployments.has(decodeURIComponent(dep[1]!))) {
        azureError(res, 404, "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.");
        return;
      }
    } else if (!deployments.has(String(rec.body?.model ?? ""))) {
      azureError(res, 404, "DeploymentNotFound", "The API deployment for this resource does not exist.");
      return;
    }
    void answer(rec, res, current(rec), (v1 ?? dep)!.at(-1)!).catch(() => undefined);
  });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    requests: server.requests,
    get script() {
      return current;
    },
    set script(s) {
      current = s;
    },
    nextAbort: server.nextAbort,
    close: server.close,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function answer(rec: RecordedRequest, res: ServerResponse, s: AzureScript, route: string): Promise<void> {
  if (s.status && s.status >= 300) {
    res.writeHead(s.status, { "content-type": "application/json", ...s.headers });
    res.end(JSON.stringify(s.errorBody ?? { error: { code: String(s.status), message: `fake failure ${s.status}` } }));
    return;
  }
  if (s.json !== undefined) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(s.json));
    return;
  }
  if (route === "audio/speech") {
    res.writeHead(200, { "content-type": "audio/mpeg" });
    res.end(Buffer.from("ID3fake-mp3-bytes"));
    return;
  }
  if (route === "audio/transcriptions") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ text: "hello azure", duration: 1.5, segments: [] }));
    return;
  }
  const body = rec.body ?? {};
  if (body.stream !== true) {
    const text = (s.parts ?? ["Hello", " from Azure"]).join("");
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        id: "chatcmpl-azure1",
        object: "chat.completion",
        created: 1733000000,
        model: "gpt-4o-2024-08-06",
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: SAFE }],
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: text }, content_filter_results: SAFE, logprobs: null }],
        usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
      }),
    );
    return;
  }
  const includeUsage = body.stream_options?.include_usage === true;
  const chunks = s.chunks ?? [
    promptFilterChunk(),
    azureChunk({ content: "", refusal: null, role: "assistant" }, null, {}),
    ...(s.parts ?? ["Hello", " from Azure"]).map((p) => azureChunk({ content: p })),
    azureChunk({}, "stop"),
    ...(includeUsage ? [azureUsage(9, 3)] : []),
  ];
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", ...s.headers });
  for (let i = 0; i < chunks.length; i++) {
    if (res.destroyed) return;
    if (s.destroyAfter === i) {
      res.socket?.destroy();
      return;
    }
    const c = chunks[i];
    res.write(typeof c === "string" ? c : `data: ${JSON.stringify(c)}\n\n`);
    if (s.delayMs) await sleep(s.delayMs);
  }
  if (s.done !== false) res.write("data: [DONE]\n\n");
  res.end();
}
