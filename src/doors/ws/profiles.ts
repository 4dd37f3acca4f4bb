/**
 * Voice profiles: a realtime model id (`local/realtime`) names a cascade of
 * three engine models — speech to text, text generation, text to speech —
 * from any providers, or an upstream speech-to-speech model the door relays
 * to (`upstream`). `local/realtime` (the local engines) is always
 * defined; config `realtime.profiles` adds or overrides others.
 */
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";

/** One cascade. */
export interface VoiceProfile {
  /** The realtime model id clients ask for. */
  readonly id: string;
  /** Transcription model (`provider/model`). */
  readonly stt: string;
  /** Text model (`provider/model`). */
  readonly text: string;
  /** Speech model (`provider/model`). */
  readonly tts: string;
  /** Default voice. */
  readonly voice: string;
  /** Default instructions (system message). */
  readonly instructions: string;
  /**
   * An upstream speech-to-speech model (`openai/gpt-realtime`) the door
   * relays the session to; the cascade fields are empty then.
   */
  readonly upstream?: string | undefined;
}

/**
 * Every model a session on `profile` uses, its own id first: what a gateway
 * key must allow for the session to open. A transcription-only session uses
 * the speech-to-text model alone.
 */
export function profileModels(profile: VoiceProfile, transcription = false): string[] {
  if (profile.upstream) return [...new Set([profile.id, profile.upstream])];
  const used = transcription ? [profile.stt] : [profile.stt, profile.text, profile.tts];
  return [...new Set([profile.id, ...used])];
}

/** A profile as written in config. */
export interface ProfileConfig {
  readonly stt?: string | undefined;
  readonly text?: string | undefined;
  readonly tts?: string | undefined;
  readonly upstream?: string | undefined;
  readonly voice?: string | undefined;
  readonly instructions?: string | undefined;
}

/** The id of the built-in profile of the local engines. */
export const LOCAL_REALTIME_MODEL = "local/realtime";

const LOCAL_PROFILE: ProfileConfig = { stt: "local/stt", text: "local/echo", tts: "local/tts" };

/** Looks up profiles by realtime model id. */
export interface ProfileRegistry {
  /** The profile used when the client names none. */
  readonly defaultId: string;
  /** Every profile id. */
  readonly ids: readonly string[];
  /** The profile `id`; throws a NotFound SpillwayError naming `param` otherwise. */
  get(id: string, param?: string): VoiceProfile;
}

/** Builds the registry from config (`realtime.profiles`), with `local/realtime` built in. */
export function createProfileRegistry(
  profiles: Readonly<Record<string, ProfileConfig>>,
  defaultId = LOCAL_REALTIME_MODEL,
): ProfileRegistry {
  const all = new Map<string, VoiceProfile>();
  for (const [id, p] of Object.entries({ [LOCAL_REALTIME_MODEL]: LOCAL_PROFILE, ...profiles })) {
    all.set(id, {
      id,
      stt: p.stt ?? "",
      text: p.text ?? "",
      tts: p.tts ?? "",
      voice: p.voice ?? "alloy",
      instructions: p.instructions ?? "",
      ...(p.upstream ? { upstream: p.upstream } : {}),
    });
  }
  const ids = [...all.keys()];
  return {
    defaultId,
    ids,
    get(id, param = "model") {
      const p = all.get(id);
      if (!p) {
        throw new SpillwayError(
          Code.NotFound,
          `The realtime model '${id}' does not exist (realtime models: ${ids.join(", ")}; define others in config realtime.profiles).`,
          { param, reason: "model_not_found" },
        );
      }
      return p;
    },
  };
}
