import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider } from "../../engine/provider.js";
import { LazyStream } from "../shared/lazy-stream.js";
import { KeyPool } from "../shared/key-pool.js";
import { invalidArgument } from "../../engine/errors.js";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import { getJson, upstreamRequest } from "../shared/upstream-http.js";
import { postJsonStream } from "../shared/upstream-stream.js";
import { anthropicHttpError } from "./errors.js";
import { messagesBody } from "./messages-request.js";
import { wholeMessage } from "./messages-whole.js";
import { anthropicStreamPayloads } from "./messages-stream.js";

/** Settings of one Anthropic upstream. */
export interface AnthropicProviderOptions extends UpstreamProviderOptions {
  /** Prefix of its model ids (`anthropic`). */
  readonly name: string;
  /** Base URL without `/v1`, as `ANTHROPIC_BASE_URL` is given to Anthropic's SDK. */
  readonly baseUrl: string;
  /** Sent as `x-api-key`. */
  readonly apiKey?: string | undefined;
  /** Extra headers for every upstream request (e.g. `anthropic-beta`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** `max_tokens` when the request sets no limit (Anthropic requires one). */
  readonly maxTokens: number;
}

/** The Messages API version Spillway speaks. */
export const ANTHROPIC_VERSION = "2023-06-01";

/**
 * The request headers of one call: the provider's, plus what the client
 * sent for Anthropic upstreams (`GenerateRequest.upstream_headers`): its
 * `anthropic-version` replaces the default, its `anthropic-beta` flags are
 * added to the configured ones (each flag once). Nothing else the client
 * sent is forwarded. A value that is not printable ASCII is a 400 naming the header.
 */
export function anthropicHeaders(base: Readonly<Record<string, string>>, fromClient: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = Object.fromEntries(Object.entries(base).map(([k, v]) => [k.toLowerCase(), v]));
  const client = new Map(Object.entries(fromClient).map(([k, v]) => [k.toLowerCase(), v]));
  for (const name of ["anthropic-version", "anthropic-beta"]) {
    const v = client.get(name);
    if (v !== undefined && !/^[\x20-\x7e]*$/.test(v)) throw invalidArgument(`Invalid '${name}' header: only printable ASCII is allowed.`, name);
  }
  const version = client.get("anthropic-version");
  if (version) out["anthropic-version"] = version;
  const beta = client.get("anthropic-beta");
  if (beta) {
    const flags = [...(out["anthropic-beta"] ?? "").split(","), ...beta.split(",")].map((f) => f.trim()).filter(Boolean);
    out["anthropic-beta"] = [...new Set(flags)].join(",");
  }
  return out;
}

/** How long a fetched model list is reused (ms). */
const MODEL_LIST_TTL_MS = 60_000;
const MODEL_LIST_TIMEOUT_MS = 5_000;

/**
 * A provider for Anthropic's Messages API (`anthropic/claude-…`): requests
 * are translated from the engine's chat shape, streamed with Node's fetch
 * under the call's AbortSignal (a client that leaves aborts the upstream at
 * once), and the SSE answer translated back into chunks.
 */
export function createAnthropicProvider(opts: AnthropicProviderOptions): Provider {
  const base = opts.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
  const headers: Record<string, string> = { "anthropic-version": ANTHROPIC_VERSION, ...opts.headers };
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const first = keys.pick();
  if (first) headers["x-api-key"] = first.key;
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
      const j = await getJson(opts.name, `${base}/v1/models?limit=1000`, headers, signal ? AbortSignal.any([signal, timeout]) : timeout);
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
      return new LazyStream(async () => {
        publishPhase(Phase.ProviderOpened);
        const body = messagesBody(model, req, opts.maxTokens);
        const whole = req.stream === false;
        const reqHeaders = { "content-type": "application/json", accept: whole ? "application/json" : "text/event-stream", ...anthropicHeaders(headers, req.upstreamHeaders) };
        const json = JSON.stringify(body);
        if (!whole) {
          // Streamed: the body from undici's dispatcher straight to the SSE reader (see postJsonStream).
          const abort = ctx.abortSource ?? ctx.signal;
          const res = await keys.withKey(ctx.labels, reqHeaders, (h) => postJsonStream(opts.name, `${base}/v1/messages`, json, h, abort, anthropicHttpError), (k) => ["x-api-key", k]);
          return anthropicStreamPayloads(res.body, opts.name, abort, ctx.alive);
        }
        const res = await keys.withKey(
          ctx.labels,
          reqHeaders,
          async (h) => {
            const r = await upstreamRequest(opts.name, `${base}/v1/messages`, { method: "POST", headers: h, body: json, signal: ctx.signal });
            if (!r.ok) throw await anthropicHttpError(opts.name, r);
            return r;
          },
          (k) => ["x-api-key", k],
        );
        return wholeMessage(res, opts.name);
      });
    },
  };
}
