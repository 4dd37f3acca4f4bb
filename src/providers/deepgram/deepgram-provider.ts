import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import type { Provider, ProviderContext } from "../../engine/provider.js";
import { KeyPool } from "../shared/key-pool.js";
import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { connectUpstreamSocket } from "../shared/upstream-socket.js";
import { deepgramError } from "./errors.js";
import { isLiveEncoding, LIVE_ENCODINGS } from "./live-audio.js";
import { deepgramLive } from "./live.js";
import { deepgramFile } from "./live-file.js";
import { deepgramSessionLive } from "./live-session.js";
import type { DeepgramListenSettings, DeepgramUpstream } from "./upstream.js";

/** Settings of a Deepgram upstream (config `type: deepgram`). */
export interface DeepgramProviderOptions extends UpstreamProviderOptions, OptionalSettings {
  /** `https://api.deepgram.com`; the live WebSocket is the same host as wss:// (ws:// for http://). */
  readonly baseUrl: string;
}

/** Each recognition setting may be left out (or undefined) for its default. */
type OptionalSettings = { readonly [K in keyof DeepgramListenSettings]?: DeepgramListenSettings[K] | undefined };

/** Models listed when config names none. */
const DEFAULT_MODELS = ["nova-3", "nova-2"];

/** `https://host[/v1]` → the host without `/v1` and its WebSocket origin. */
export function deepgramBases(baseUrl: string): { base: string; wsBase: string } {
  const base = baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
  return { base, wsBase: base.replace(/^http/, "ws") };
}

/**
 * Speech recognition by Deepgram (`deepgram/nova-3`). Live audio — 16-bit
 * PCM, a streamed WAV, G.711 (gRPC `Transcribe`, the realtime door) — is
 * streamed over the `/v1/listen` WebSocket with interim results,
 * endpointing and speech events; so are uploaded files asked for `live`
 * results (see live-file.ts); other files go to the REST API in one request.
 * The turns of a realtime session share one socket (live-connection.ts). Keys are sent as
 * `Authorization: Token …`, picked from the provider's pool.
 */
export function createDeepgramProvider(opts: DeepgramProviderOptions): Provider {
  const { base, wsBase } = deepgramBases(opts.baseUrl);
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const headers: Record<string, string> = { ...opts.headers };
  const auth = (k: string): readonly [string, string] => ["authorization", `Token ${k}`];
  const settings: DeepgramListenSettings = {
    endpointingMs: opts.endpointingMs ?? 300,
    utteranceEndMs: opts.utteranceEndMs ?? 1000,
    interimResults: opts.interimResults ?? true,
    smartFormat: opts.smartFormat ?? true,
    punctuate: opts.punctuate ?? true,
    language: opts.language ?? "",
    keepAliveMs: opts.keepAliveMs ?? 3000,
    chunkMs: opts.chunkMs ?? 100,
    speechChunkMs: opts.speechChunkMs ?? 250,
  };
  const up: DeepgramUpstream = {
    name: opts.name,
    base,
    wsBase,
    settings,
    send: (ctx, extra, run) => keys.withKey(ctx.labels, { ...headers, ...extra, "x-request-id": ctx.streamId }, run, auth),
    connect: (ctx: ProviderContext, url: string) =>
      keys.withKey(
        ctx.labels,
        headers,
        (h) => connectUpstreamSocket({ provider: opts.name, url, headers: h, signal: ctx.signal, refused: (s, b, r) => deepgramError(opts.name, s, b, r) }),
        auth,
      ),
  };
  const info = (m: string): ModelInfo => ({ id: `${opts.name}/${m}`, ownedBy: opts.name, kinds: [ModelKind.MODEL_KIND_TRANSCRIPTION], available: true, unavailableReason: "" });
  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    nativeTranscribeEncodings: LIVE_ENCODINGS,
    listModels: () => Promise.resolve((opts.models ?? DEFAULT_MODELS).map(info)),
    // A call of a door session (a realtime session's turns) goes over the session's one socket (live-session.ts, live-connection.ts).
    transcribe: (model, config, audio, ctx) =>
      !isLiveEncoding(config.encoding)
        ? deepgramFile(up, model, config, audio, ctx)
        : ctx.session
          ? deepgramSessionLive(up, model, config, audio, ctx, ctx.session)
          : deepgramLive(up, model, config, audio, ctx),
  };
}
