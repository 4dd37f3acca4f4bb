import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider } from "../../engine/provider.js";
import { getJson, postJson } from "../shared/upstream-http.js";
import { chatCompletionsBody, completionsBody } from "./chat-request.js";
import { openAiStreamPayloads } from "./chat-stream.js";

/** Settings of one OpenAI-compatible upstream. */
export interface OpenAiProviderOptions {
  /** Prefix of its model ids (`openai`, `groq`, `ollama`, …). */
  readonly name: string;
  /** Base URL including `/v1`, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string;
  /** Bearer key; omitted for servers that need none (Ollama, vLLM). */
  readonly apiKey?: string | undefined;
  /** Extra headers for every upstream request. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Models to list in `/v1/models`; when absent the upstream's own list is fetched. */
  readonly models?: readonly string[] | undefined;
  /** Time to first chunk (ms); the engine's default when absent. */
  readonly timeoutMs?: number | undefined;
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}

const MODEL_LIST_TTL_MS = 60_000;
const MODEL_LIST_TIMEOUT_MS = 5_000;

/**
 * A provider for OpenAI and every server that speaks its API. Requests are
 * streamed upstream with Node's fetch under the call's AbortSignal, so a
 * client that leaves aborts the upstream request at once.
 */
export function createOpenAiProvider(opts: OpenAiProviderOptions): Provider {
  const base = opts.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.apiKey) headers["authorization"] = `Bearer ${opts.apiKey}`;
  let cached: { at: number; models: ModelInfo[] } | undefined;

  const info = (m: string): ModelInfo => ({
    id: `${opts.name}/${m}`,
    ownedBy: opts.name,
    kinds: [ModelKind.MODEL_KIND_TEXT],
    available: true,
    unavailableReason: "",
  });

  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    async listModels(signal) {
      if (opts.models) return opts.models.map(info);
      if (cached && Date.now() - cached.at < MODEL_LIST_TTL_MS) return cached.models;
      const timeout = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
      const j = await getJson(opts.name, `${base}/models`, headers, signal ? AbortSignal.any([signal, timeout]) : timeout);
      const data = (j as { data?: unknown }).data;
      const models = Array.isArray(data)
        ? data.flatMap((m: unknown) => {
            const id = (m as { id?: unknown } | null)?.id;
            return typeof id === "string" ? [info(id)] : [];
          })
        : [];
      cached = { at: Date.now(), models };
      return models;
    },
    async *generate(model, req, ctx) {
      const legacy = req.messages.length === 0;
      const body = legacy ? completionsBody(model, req) : chatCompletionsBody(model, req);
      const url = `${base}${legacy ? "/completions" : "/chat/completions"}`;
      const res = await postJson(opts.name, url, body, { ...headers, "x-request-id": ctx.streamId }, ctx.signal);
      yield* openAiStreamPayloads(res.body ?? emptyBody(), opts.name, ctx.signal, legacy);
    },
  };
}
