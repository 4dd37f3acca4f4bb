import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import type { ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider, ProviderContext } from "../../engine/provider.js";
import type { ChunkPayload } from "../../engine/payload.js";
import { KeyPool } from "../shared/key-pool.js";
import { LazyStream } from "../shared/lazy-stream.js";
import { getJson } from "../shared/upstream-http.js";
import { postJsonStream } from "../shared/upstream-stream.js";
import { postJsonWhole } from "../shared/upstream-whole.js";
import { chatCompletionsBody, completionsBody } from "./chat-request.js";
import { openAiAudioMethods, openAiModelKinds } from "./openai-audio.js";
import { openAiStreamPayloads, type ChatChunkHook } from "./chat-stream.js";
import { wholeCompletion } from "./chat-whole.js";
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
  /** Where the routes live and how keys are sent, for hosts that lay OpenAI's API out their own way (Azure); OpenAI's layout when absent. */
  readonly dialect?: OpenAiDialect | undefined;
  /** Makes, per streamed chat, a hook run on each chunk after the shared mapping (see `openAiStreamPayloads`), for a host's own fields (Azure's content filter results). */
  readonly chunkHook?: (() => ChatChunkHook) | undefined;
}

/**
 * How one host lays out the OpenAI API: route URLs and the key's header.
 * OpenAI's own: `{baseUrl}{route}` and `authorization: Bearer <key>`.
 */
export interface OpenAiDialect {
  /** The URL of `route` (`/chat/completions`, `/completions`, `/responses`, `/audio/speech`, `/audio/transcriptions`) for `model`. */
  readonly url: (route: string, model: string) => string;
  /** The model list's URL; when undefined nothing is fetched and only configured `models` are listed. */
  readonly modelsUrl: string | undefined;
  /** The header that carries a key. */
  readonly authHeader: (key: string) => readonly [string, string];
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
  const dialect: OpenAiDialect = opts.dialect ?? { url: (route) => `${base}${route}`, modelsUrl: `${base}/models`, authHeader: (k) => ["authorization", `Bearer ${k}`] };
  const headers: Record<string, string> = { ...opts.headers };
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const first = keys.pick();
  if (first) {
    const [h, v] = dialect.authHeader(first.key);
    headers[h] = v;
  }
  let cached: { at: number; models: ModelInfo[] } | undefined;

  const info = (m: string): ModelInfo => ({
    id: `${opts.name}/${m}`,
    ownedBy: opts.name,
    kinds: openAiModelKinds(m),
    available: true,
    unavailableReason: "",
  });

  /** A streamed answer's payloads (the native Responses API's, or a chat's): its SSE read straight from undici's dispatcher (see postJsonStream). */
  async function openStreamed(native: boolean, legacy: boolean, body: unknown, url: string, h: Record<string, string>, ctx: ProviderContext): Promise<AsyncIterator<ChunkPayload>> {
    const abort = ctx.abortSource ?? ctx.signal;
    const json = JSON.stringify(body);
    const res = await keys.withKey(ctx.labels, h, (hs) => postJsonStream(opts.name, url, json, hs, abort), dialect.authHeader);
    if (native) return responsesStreamPayloads(res.body, opts.name, abort, ctx.alive);
    return openAiStreamPayloads(res.body, opts.name, abort, legacy, ctx.alive, opts.chunkHook?.());
  }

  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    ...openAiAudioMethods({
      name: opts.name,
      url: dialect.url,
      send: (ctx, extra, run) => keys.withKey(ctx.labels, { ...headers, ...extra, "x-request-id": ctx.streamId }, run, dialect.authHeader),
    }),
    async listModels(signal) {
      if (opts.models) return opts.models.map(info);
      if (dialect.modelsUrl === undefined) return [];
      if (cached && Date.now() - cached.at < MODEL_LIST_TTL_MS) return cached.models;
      const timeout = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
      const j = await getJson(opts.name, dialect.modelsUrl, headers, signal ? AbortSignal.any([signal, timeout]) : timeout);
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
      return new LazyStream(() => {
        try {
          publishPhase(Phase.ProviderOpened);
          const legacy = req.messages.length === 0;
          // A host with its own per-chunk fields (Azure's content filter) keeps streaming: its hook reads chunks.
          const native = opts.responsesApi === true && fitsResponsesApi(req);
          const r = opts.chunkHook && req.stream === false ? { ...req, stream: true } : req;
          const body = native ? responsesBody(model, r) : legacy ? completionsBody(model, r) : chatCompletionsBody(model, r);
          const url = dialect.url(native ? "/responses" : legacy ? "/completions" : "/chat/completions", model);
          // Not `{ ...headers, "x-request-id": id }`: a spread followed by more properties is a slow path in Node 20.
          const h = Object.assign({}, headers);
          h["x-request-id"] = ctx.streamId;
          if (r.stream === false && !native) {
            // A whole answer: read to its end on undici's dispatcher, no Readable per response (see postJsonWhole);
            // a promise chain, not an async function (one frame fewer per request).
            const json = JSON.stringify(body);
            return keys
              .withKey(ctx.labels, h, (hs) => postJsonWhole(opts.name, url, json, hs, ctx.abortSource ?? ctx.signal), dialect.authHeader)
              .then((whole) => wholeCompletion(whole, opts.name, legacy));
          }
          return openStreamed(native, legacy, body, url, h, ctx);
        } catch (e) {
          // What was thrown, as the async function this replaces would reject with it.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          return Promise.reject(e);
        }
      });
    },
  };
}
