import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import { invalidArgument, SpillwayError } from "../../engine/errors.js";
import type { Provider, ProviderContext } from "../../engine/provider.js";
import { KeyPool } from "../shared/key-pool.js";
import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { connectUpstreamSocket } from "../shared/upstream-socket.js";
import { elevenLabsError } from "./errors.js";
import { ELEVENLABS_ENCODINGS } from "./formats.js";
import { elevenLabsSpeech } from "./speech-http.js";
import { elevenLabsSpeechFromText } from "./speech-input-stream.js";
import type { ElevenLabsUpstream } from "./upstream.js";

/** Settings of an ElevenLabs upstream (config `type: elevenlabs`). */
export interface ElevenLabsProviderOptions extends UpstreamProviderOptions {
  /** `https://api.elevenlabs.io`; the input-streaming socket is the same host as wss:// (ws:// for http://). */
  readonly baseUrl: string;
  /** Voice names (the OpenAI `voice` field, e.g. `alloy`) → ElevenLabs voice ids; other values are used as ids. */
  readonly voices?: Readonly<Record<string, string>> | undefined;
  /** `voice_settings` for every request (stability, similarity_boost, style, use_speaker_boost, speed). */
  readonly voiceSettings?: Readonly<Record<string, unknown>> | undefined;
  /** `chunk_length_schedule` of input streams (characters buffered before each generation). */
  readonly chunkLengthSchedule?: readonly number[] | undefined;
  /**
   * Offer speech from streamed text (the input-streaming WebSocket) to the
   * realtime door. Default true: with the fakes at realistic latencies its
   * first audio equals sentence-by-sentence HTTP (within noise, see
   * docs/PERFORMANCE.md), with one upstream socket per response instead of
   * one request per sentence, opened while the text model thinks.
   */
  readonly streamInput?: boolean | undefined;
}

/** Models listed when config names none. */
const DEFAULT_MODELS = ["eleven_flash_v2_5", "eleven_turbo_v2_5", "eleven_multilingual_v2"];

/**
 * Speech by ElevenLabs (`elevenlabs/eleven_flash_v2_5`): whole texts with
 * the streaming HTTP endpoint (`/v1/audio/speech`, gRPC `Synthesize`, the
 * realtime door when input streaming is off), streamed text with the
 * input-streaming WebSocket (the realtime door's responses). Keys go in
 * `xi-api-key`, picked from the provider's pool.
 */
export function createElevenLabsProvider(opts: ElevenLabsProviderOptions): Provider {
  const base = opts.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
  const wsBase = base.replace(/^http/, "ws");
  const keys = KeyPool.from(opts.apiKey, opts.apiKeys);
  const headers: Record<string, string> = { ...opts.headers };
  const auth = (k: string): readonly [string, string] => ["xi-api-key", k];
  const voices = opts.voices ?? {};
  const up: ElevenLabsUpstream = {
    name: opts.name,
    base,
    wsBase,
    voiceSettings: opts.voiceSettings ?? {},
    chunkLengthSchedule: opts.chunkLengthSchedule,
    voiceId: (voice) => {
      const id = Object.hasOwn(voices, voice) ? voices[voice]! : voice;
      if (!id) throw invalidArgument(`voice is required: an ElevenLabs voice id, or one of the configured names (${Object.keys(voices).join(", ") || "none"})`, "voice");
      return id;
    },
    send: (ctx, run) => keys.withKey(ctx.labels, { ...headers, "x-request-id": ctx.streamId }, run, auth),
    connect: (ctx: ProviderContext, url: string) => {
      const key = keys.pick();
      const h: Record<string, string> = { ...headers };
      if (key) {
        h["xi-api-key"] = key.key;
        if (keys.size > 1) ctx.labels["key"] = key.name;
      }
      return connectUpstreamSocket({ provider: opts.name, url, headers: h, signal: ctx.signal, refused: (s, b, r) => elevenLabsError(opts.name, s, b, r) }).then(
        (socket) => ({ socket, key }),
        (e: unknown) => {
          // A refused key rests, as with HTTP requests (KeyPool.withKey).
          const refused = key && e instanceof SpillwayError && [401, 403, 429].includes(e.httpStatus ?? 0);
          throw refused ? keys.refused(key, e) : e;
        },
      );
    },
  };
  const info = (m: string): ModelInfo => ({ id: `${opts.name}/${m}`, ownedBy: opts.name, kinds: [ModelKind.MODEL_KIND_SPEECH], available: true, unavailableReason: "" });
  const provider: Provider = {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    nativeSpeechEncodings: ELEVENLABS_ENCODINGS,
    listModels: () => Promise.resolve((opts.models ?? DEFAULT_MODELS).map(info)),
    synthesize: (model, req, ctx) => elevenLabsSpeech(up, model, req, ctx),
  };
  if (opts.streamInput !== false) provider.synthesizeStream = (model, req, text, ctx) => elevenLabsSpeechFromText(up, model, req, text, ctx);
  return provider;
}
