import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import type { ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider } from "../../engine/provider.js";
import { KeyPool } from "../shared/key-pool.js";
import { LazyStream } from "../shared/lazy-stream.js";
import { getJson, postJson } from "../shared/upstream-http.js";
import { chatCompletionsBody, completionsBody } from "./chat-request.js";
import { openAiAudioMethods, openAiModelKinds } from "./openai-audio.js";
import { openAiStreamPayloads } from "./chat-stream.js";
import { fitsResponsesApi, responsesBody } from "./responses-body.js";
import { responsesStreamPayloads } from "./responses-stream.js";

/** Settings of one OpenAI-compatible upstream. */
export interface OpenAiProviderOptions extends UpstreamProviderOptions {
  /** Prefix of its model ids (`openai`, `groq`, `ollama`, …). */
  readonly name: string;
  /** Base URL including `/v1`, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string;
  /** Bearer key; omitted for servers that need none (Ollama, vLLM). */
  readonly apiKey?: string | undefined;
  /** Send chats that fit it to the upstream's native `/responses` (see responses-body.ts). */
  readonly responsesApi?: boolean | undefined;
}

const MODEL_LIST_TTL_MS = 60_000;
const MODEL_LIST_TIMEOUT_MS = 5_000;

/**
 * A provider for OpenAI and every server that speaks its API. Requests are
 * streamed upstream with undici under the call's AbortSignal, so a
 * client that leaves aborts the upstream request at once.
 */
export function createOpenAiProvider(opts: OpenAiProviderOptions): Provider {
  const base = opts.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { ...opts.headers };
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const first = keys.pick();
  if (first) headers["authorization"] = `Bearer ${first.key}`;
  let cached: { at: number; models: ModelInfo[] } | undefined;

  const info = (m: string): ModelInfo => ({
    id: `${opts.name}/${m}`,
    ownedBy: opts.name,
    kinds: openAiModelKinds(m),
    available: true,
    unavailableReason: "",
  });

  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    ...openAiAudioMethods({
      name: opts.name,
      base,
      send: (ctx, extra, run) => keys.withKey(ctx.labels, { ...headers, ...extra, "x-request-id": ctx.streamId }, run),
    }),
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
    generate(model, req, ctx) {
      // Opened on the engine's first pull; then every pull goes straight to the payload stream.
      return new LazyStream(async () => {
        publishPhase(Phase.ProviderOpened);
        const legacy = req.messages.length === 0;
        const native = opts.responsesApi === true && fitsResponsesApi(req);
        const body = native ? responsesBody(model, req) : legacy ? completionsBody(model, req) : chatCompletionsBody(model, req);
        const url = `${base}${native ? "/responses" : legacy ? "/completions" : "/chat/completions"}`;
        const res = await keys.withKey(ctx.labels, { ...headers, "x-request-id": ctx.streamId }, (h) => postJson(opts.name, url, body, h, ctx.signal));
        if (native) return responsesStreamPayloads(res.stream, opts.name, ctx.signal, ctx.alive);
        return openAiStreamPayloads(res.stream, opts.name, ctx.signal, legacy, ctx.alive);
      });
    },
  };
}
