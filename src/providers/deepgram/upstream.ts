import type { ProviderContext } from "../../engine/provider.js";
import type { UpstreamSocket } from "../shared/upstream-socket.js";

/** Recognition settings sent with every live stream (config of the `deepgram` provider). */
export interface DeepgramListenSettings {
  /** `endpointing` (ms of silence that ends a segment with `speech_final`), or false to turn it off. Default 300. */
  readonly endpointingMs: number | false;
  /** `utterance_end_ms`: a gap after the last final word that sends `UtteranceEnd`. Default 1000; 0 leaves it off. */
  readonly utteranceEndMs: number;
  /** `interim_results`. Default true. */
  readonly interimResults: boolean;
  /** `smart_format`. Default true. */
  readonly smartFormat: boolean;
  /** `punctuate`. Default true. */
  readonly punctuate: boolean;
  /** Language when the request names none ("" for Deepgram's default). */
  readonly language: string;
  /** Without audio for this long (ms), a `KeepAlive` is sent (Deepgram closes after 10 s). Default 3000. */
  readonly keepAliveMs: number;
  /**
   * Live audio is sent in frames of about this many ms (pieces that come
   * closer together are joined; a piece alone goes after this long; the end
   * of the input flushes at once). Deepgram recommends 20–100 ms; each frame
   * is one socket write, and Deepgram hears audio (so its endpointing hears
   * silence) up to `chunkMs` − 20 ms later than with a realtime client's
   * 20 ms pieces. 0 sends every piece as it comes. Default 100 (the top of
   * Deepgram's range: half the socket writes of 60 ms, the largest CPU item
   * of the realtime door after the VAD; its endpointing hears silence up to
   * 80 ms later than with 20 ms pieces).
   */
  readonly chunkMs: number;
  /**
   * Frames of about this many ms while the door's turn detector hears
   * speech (a realtime session's VAD, through its `SpeechActivity`); at its
   * first quiet frame what is held goes up at once, so Deepgram's
   * endpointing hears the end of speech no later than the VAD does. Not
   * above 250 (the top of Deepgram's advice, 20–250 ms per message); at or
   * under `chunkMs`, `chunkMs` throughout. Default 250 (fewer socket
   * writes while speech lasts: the realtime door's largest CPU item after
   * the VAD, docs/PERFORMANCE.md "Voice append path, wave 6").
   */
  readonly speechChunkMs: number;
}

/** Where a Deepgram upstream lives, as its provider knows it. */
export interface DeepgramUpstream {
  /** The provider's name (prefix of its model ids). */
  readonly name: string;
  /** `https://api.deepgram.com` (no `/v1`). */
  readonly base: string;
  /** The same host as ws:// or wss://. */
  readonly wsBase: string;
  readonly settings: DeepgramListenSettings;
  /** Runs one upstream HTTP request with the provider's headers plus `extra`, authorized with a key from its pool. */
  readonly send: <T>(ctx: ProviderContext, extra: Readonly<Record<string, string>>, run: (headers: Record<string, string>) => Promise<T>) => Promise<T>;
  /** Opens the live WebSocket `url`, authorized with a key from the pool. */
  readonly connect: (ctx: ProviderContext, url: string) => Promise<UpstreamSocket>;
}
