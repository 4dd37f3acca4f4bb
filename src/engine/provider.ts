import type {
  GenerateRequest,
  ModelInfo,
  SynthesizeRequest,
  TranscribeConfig,
} from "../gen/spillway/v1/request.js";
import type { AudioEncoding } from "../gen/spillway/v1/chunk.js";
import type { ChunkPayload } from "./payload.js";
import type { ProviderSession } from "./provider-session.js";
import type { AbortSource } from "./signals.js";

/** What a provider gets with every call. */
export interface ProviderContext {
  /**
   * Aborts when the client goes away, a deadline passes or the server shuts
   * down. Providers must pass it to every upstream request and child process.
   */
  readonly signal: AbortSignal;
  /**
   * The same abort as `signal`, as callbacks (see `AbortSource`), for an
   * upstream client that needs no AbortSignal: reading `signal` makes one,
   * which costs ~3 µs in Node 20. Absent for contexts made outside the engine.
   */
  readonly abortSource?: AbortSource | undefined;
  /** Absolute deadline of the whole call (epoch ms). */
  readonly deadline: number;
  /** Id of the stream, for logs and upstream request ids. */
  readonly streamId: string;
  /** The door's request id (the client's `x-request-id`, or the stream id when the door has none). */
  readonly requestId?: string | undefined;
  /**
   * Labels the provider may set for logs and response headers; `key` names
   * the upstream key that served the call (a name, never the key).
   */
  readonly labels: Record<string, string>;
  /**
   * Says the call is alive although no payload came: upstream bytes without
   * content (SSE pings and comments), audio the recognizer consumed. Restarts
   * the first-chunk or idle timer, so a timeout means silence on the wire,
   * not a pause in the output. Cheap; call it as often as that happens.
   */
  readonly alive?: (() => void) | undefined;
  /**
   * The door session this call belongs to (a realtime session), whose
   * resources outlive the call: a provider may keep an upstream connection
   * there for the session's next calls (see provider-session.ts). Absent for
   * one-off calls.
   */
  readonly session?: ProviderSession | undefined;
}

/**
 * A source of model output. Each method turns a normalized request into a
 * stream of chunk payloads; the engine stamps ids, enforces the stream
 * invariant and timeouts. A provider may yield `usage` and `finish` anywhere:
 * the engine moves them to the end. Failing before the first payload should
 * throw a {@link SpillwayError} that says what went wrong.
 *
 * Methods are optional: a provider that cannot synthesize speech has no
 * `synthesize`.
 */
export interface Provider {
  /** The prefix of model ids routed here (`openai` in `openai/gpt-4o-mini`). */
  readonly name: string;
  /** Default time from the request to its first chunk (ms); the engine's default when absent. */
  readonly timeoutMs?: number | undefined;
  /** Models this provider serves, with ids including the prefix. */
  listModels(signal?: AbortSignal): Promise<ModelInfo[]>;
  /**
   * Validates that `model` (without prefix) can be served; throws a
   * `NotFound` SpillwayError otherwise. Providers that pass any model through
   * to an upstream accept everything here.
   */
  checkModel?(model: string): void;
  /** Streams a text generation. */
  generate?(model: string, req: GenerateRequest, ctx: ProviderContext): AsyncIterable<ChunkPayload>;
  /** Streams synthesized audio. */
  synthesize?(model: string, req: SynthesizeRequest, ctx: ProviderContext): AsyncIterable<ChunkPayload>;
  /**
   * Streams speech for text that arrives while the stream runs (a text
   * model's reply as it is written), read as it arrives; `req.input`, when
   * set, is spoken first. Optional: callers without it synthesize the text
   * in pieces (sentence by sentence) with `synthesize`.
   */
  synthesizeStream?(model: string, req: SynthesizeRequest, text: AsyncIterable<string>, ctx: ProviderContext): AsyncIterable<ChunkPayload>;
  /**
   * Encodings `synthesize` / `synthesizeStream` produce themselves when asked
   * (e.g. G.711 for telephony), so a door can ask for them instead of PCM.
   * Absent: only PCM may be asked for with certainty.
   */
  readonly nativeSpeechEncodings?: readonly AudioEncoding[] | undefined;
  /**
   * Encodings `transcribe` takes as they are, streamed as they arrive (e.g.
   * G.711 or raw PCM for a live recognizer), so a door can send audio as it
   * came instead of wrapping it in a WAV. Absent: send a WAV.
   */
  readonly nativeTranscribeEncodings?: readonly AudioEncoding[] | undefined;
  /**
   * True when `transcribe` still uses request fields that arrive after the
   * audio has begun (its `completed` argument) — an upstream whose request
   * can carry them after the file, as a multipart form can. Absent: every
   * field must be known before the audio starts, and a caller that learns
   * one later refuses it.
   */
  readonly transcribeLateFields?: boolean | undefined;
  /**
   * Streams a transcript of `audio`, read as it arrives. `completed`, when
   * given, is the request as its caller completed it while the audio
   * arrived (fields sent after a form's file part): it settles no later
   * than the audio ends, and rejects when the request turned out invalid
   * (the audio then throws too). Only providers with
   * {@link Provider.transcribeLateFields} need to read it.
   */
  transcribe?(
    model: string,
    config: TranscribeConfig,
    audio: AsyncIterable<Uint8Array>,
    ctx: ProviderContext,
    completed?: Promise<TranscribeConfig>,
  ): AsyncIterable<ChunkPayload>;
}
