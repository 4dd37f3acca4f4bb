import type { ProviderContext } from "../../engine/provider.js";
import type { UpstreamKey } from "../shared/key-pool.js";
import type { UpstreamSocket } from "../shared/upstream-socket.js";

/** Where an ElevenLabs upstream lives, as its provider knows it. */
export interface ElevenLabsUpstream {
  /** The provider's name (prefix of its model ids). */
  readonly name: string;
  /** `https://api.elevenlabs.io` (no `/v1`). */
  readonly base: string;
  /** The same host as ws:// or wss://. */
  readonly wsBase: string;
  /** `voice_settings` sent with every request (stability, similarity_boost, …); speed is added per request. */
  readonly voiceSettings: Readonly<Record<string, unknown>>;
  /** `generation_config.chunk_length_schedule` of input streams; ElevenLabs' default when absent. */
  readonly chunkLengthSchedule: readonly number[] | undefined;
  /** The voice id for the request's `voice` (a configured name, else the id itself); throws naming `voice`. */
  readonly voiceId: (voice: string) => string;
  /** Runs one upstream HTTP request with the provider's headers, authorized with a key from its pool. */
  readonly send: <T>(ctx: ProviderContext, run: (headers: Record<string, string>) => Promise<T>) => Promise<T>;
  /** Opens an input-streaming socket at `url`; `run` gets the socket and the key (it goes in the first message too). */
  readonly connect: (ctx: ProviderContext, url: string) => Promise<{ socket: UpstreamSocket; key: UpstreamKey | undefined }>;
}
