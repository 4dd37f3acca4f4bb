import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider, ProviderContext } from "../../engine/provider.js";
import type { ChunkPayload } from "../../engine/payload.js";
import { KeyPool } from "../shared/key-pool.js";
import { LazyStream } from "../shared/lazy-stream.js";
import { isObj, str } from "../shared/json.js";
import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { upstreamRequest, type UpstreamResponse } from "../shared/upstream-http.js";
import { googleHttpError } from "./errors.js";
import { geminiBody } from "./gemini-request.js";
import { geminiJsonPayloads, geminiStreamPayloads } from "./gemini-stream.js";
import { createVertexTokens, type VertexTokens } from "./vertex-auth.js";

/** Settings of one Gemini upstream: Google AI Studio (an API key) or Vertex AI (`vertex` + OAuth). */
export interface GeminiProviderOptions extends Omit<UpstreamProviderOptions, "baseUrl"> {
  /** Prefix of its model ids (`gemini`, `vertex`). */
  readonly name: string;
  /**
   * Origin of the API, without a version: `https://generativelanguage.googleapis.com`
   * for AI Studio (the default), `https://{location}-aiplatform.googleapis.com`
   * for Vertex AI (the default with `vertex`).
   */
  readonly baseUrl?: string | undefined;
  /** AI Studio key(s), sent as `x-goog-api-key`. Not used with `vertex`. */
  readonly apiKey?: string | undefined;
  /** Serve through Vertex AI in this project and location, with OAuth bearer tokens. */
  readonly vertex?: { readonly project: string; readonly location: string } | undefined;
  /** Vertex: a service-account JSON file; Application Default Credentials when absent. */
  readonly credentialsFile?: string | undefined;
  /** Vertex: the OAuth token endpoint (the file's `token_uri`, else Google's, when absent). */
  readonly tokenUrl?: string | undefined;
  /** API version in the path: `v1beta` for AI Studio, `v1` for Vertex, by default. */
  readonly apiVersion?: string | undefined;
  /** Forces `:streamGenerateContent` (true) or `:generateContent` (false) for every request; by default a non-streamed client request takes the whole answer and a streamed one streams. */
  readonly streaming?: boolean | undefined;
}

const MODEL_LIST_TTL_MS = 60_000;
const MODEL_LIST_TIMEOUT_MS = 5_000;
/** Most model-list pages read (1000 models each). */
const MAX_MODEL_PAGES = 5;

/** The Vertex AI origin of `location` (`global` has no regional host). */
function vertexOrigin(location: string): string {
  return location === "global" ? "https://aiplatform.googleapis.com" : `https://${location}-aiplatform.googleapis.com`;
}

/** A model's short id: `models/gemini-2.5-flash` and `publishers/google/models/x` → the last segment. */
function shortId(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** The payloads of a whole (non-streamed) answer, handed out one per pull. */
function fromArray(items: readonly ChunkPayload[]): AsyncIterator<ChunkPayload> {
  let i = 0;
  return {
    next: () => Promise.resolve(i < items.length ? { done: false, value: items[i++]! } : { done: true, value: undefined }),
  };
}

/**
 * A provider for Google's Gemini API, on Google AI Studio
 * (`{baseUrl}/v1beta/models/{model}:streamGenerateContent?alt=sse`,
 * `x-goog-api-key`, a {@link KeyPool} of keys) or on Vertex AI
 * (`…/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:…`,
 * an OAuth bearer token from {@link createVertexTokens}). Requests go out
 * with undici under the call's AbortSignal (a client that leaves aborts
 * the upstream at once); the SSE answer is mapped as it arrives
 * (gemini-stream.ts). Throws at creation when a Vertex credentials file
 * cannot be read.
 */
export function createGeminiProvider(opts: GeminiProviderOptions): Provider {
  const vertex = opts.vertex;
  // An origin given with its version (`…/v1beta`, as some tools print it) is taken as the origin.
  const origin = (opts.baseUrl ?? (vertex ? vertexOrigin(vertex.location) : "https://generativelanguage.googleapis.com")).replace(/\/+$/, "").replace(/\/v1(beta1?)?$/, "");
  const version = opts.apiVersion ?? (vertex ? "v1" : "v1beta");
  const modelsPath = vertex
    ? `${origin}/${version}/projects/${encodeURIComponent(vertex.project)}/locations/${encodeURIComponent(vertex.location)}/publishers/google/models`
    : `${origin}/${version}/models`;
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const tokens: VertexTokens | undefined = vertex
    ? createVertexTokens({ provider: opts.name, credentialsFile: opts.credentialsFile, tokenUrl: opts.tokenUrl })
    : undefined;
  let cached: { at: number; models: ModelInfo[] } | undefined;

  const info = (m: string): ModelInfo => ({
    id: `${opts.name}/${m}`,
    ownedBy: opts.name,
    kinds: [ModelKind.MODEL_KIND_TEXT],
    available: true,
    unavailableReason: "",
  });

  /** Runs one request with the provider's auth: a pooled key (AI Studio) or a bearer token (Vertex). */
  const send = async (labels: Record<string, string>, signal: AbortSignal, run: (h: Record<string, string>) => Promise<UpstreamResponse>): Promise<UpstreamResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (tokens) return run({ ...headers, authorization: `Bearer ${await tokens.token(signal)}` });
    return keys.withKey(labels, headers, run, (k) => ["x-goog-api-key", k]);
  };

  const fetchModels = async (signal: AbortSignal): Promise<ModelInfo[]> => {
    // Vertex lists Google's publisher models outside the project path (v1beta1).
    const listUrl = vertex ? `${origin}/v1beta1/publishers/google/models` : modelsPath;
    const models: ModelInfo[] = [];
    let page = "";
    for (let i = 0; i < MAX_MODEL_PAGES; i++) {
      const url = `${listUrl}?pageSize=1000${page ? `&pageToken=${encodeURIComponent(page)}` : ""}`;
      const res = await send({}, signal, async (h) => {
        const r = await upstreamRequest(opts.name, url, { method: "GET", headers: h, signal });
        if (!r.ok) throw await googleHttpError(opts.name, r);
        return r;
      });
      const j = await res.json();
      const list = isObj(j) ? (j["models"] ?? j["publisherModels"]) : undefined;
      if (Array.isArray(list)) {
        for (const m of list) {
          if (!isObj(m) || !str(m["name"])) continue;
          const methods = m["supportedGenerationMethods"];
          if (Array.isArray(methods) && !methods.includes("generateContent")) continue;
          models.push(info(shortId(str(m["name"]))));
        }
      }
      page = isObj(j) ? str(j["nextPageToken"]) : "";
      if (!page) break;
    }
    return models;
  };

  const open = async (model: string, body: unknown, ctx: ProviderContext, wantsStream: boolean): Promise<AsyncIterator<ChunkPayload>> => {
    // A client waiting for the whole answer gets it from :generateContent (unless config says one way for all).
    const streaming = opts.streaming ?? wantsStream;
    const id = encodeURIComponent(shortId(model));
    const url = `${modelsPath}/${id}:${streaming ? "streamGenerateContent?alt=sse" : "generateContent"}`;
    const res = await send(ctx.labels, ctx.signal, async (h) => {
      const r = await upstreamRequest(opts.name, url, {
        method: "POST",
        headers: { ...h, "content-type": "application/json", "x-request-id": ctx.streamId },
        body: JSON.stringify(body),
        signal: ctx.signal,
      });
      if (!r.ok) throw await googleHttpError(opts.name, r);
      return r;
    });
    if (streaming) return geminiStreamPayloads(res.stream, opts.name, ctx.signal, ctx.alive);
    return fromArray(geminiJsonPayloads(await res.json(), opts.name));
  };

  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    async listModels(signal) {
      if (opts.models) return opts.models.map(info);
      if (cached && Date.now() - cached.at < MODEL_LIST_TTL_MS) return cached.models;
      const timeout = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
      const models = await fetchModels(signal ? AbortSignal.any([signal, timeout]) : timeout);
      cached = { at: Date.now(), models };
      return models;
    },
    generate(model, req, ctx) {
      // Opened on the engine's first pull; the body is built there too, so bad content fails the call, not the caller.
      return new LazyStream(() => open(model, geminiBody(model, req), ctx, req.stream !== false));
    },
  };
}
