import { invalidArgument } from "../../engine/errors.js";

/**
 * OpenAI's voice names mapped to espeak-ng voices (`language+variant`). The
 * timbres are espeak's, not OpenAI's: the mapping keeps each name distinct
 * and roughly matches the voice's character (gender, accent).
 */
export const ESPEAK_VOICES: Readonly<Record<string, string>> = {
  alloy: "en-us+f2",
  ash: "en-us+m3",
  ballad: "en-gb-x-rp+m2",
  coral: "en-us+f3",
  echo: "en-us+m1",
  fable: "en-gb+m4",
  onyx: "en-us+m7",
  nova: "en-us+f4",
  sage: "en-gb+f1",
  shimmer: "en-us+f5",
  verse: "en-us+m5",
  marin: "en-us+f1",
  cedar: "en-us+m2",
};

/** The espeak-ng voice for an OpenAI voice name; unknown names are a 400 listing the voices. */
export function espeakVoice(voice: string): string {
  const v = ESPEAK_VOICES[voice.toLowerCase()];
  if (!v) {
    throw invalidArgument(
      `Unknown voice '${voice}'. Available voices: ${Object.keys(ESPEAK_VOICES).join(", ")}.`,
      "voice",
    );
  }
  return v;
}

/** espeak-ng's default rate in words per minute, and the range it accepts. */
const BASE_WPM = 175;
const MIN_WPM = 80;
const MAX_WPM = 450;

/** The espeak-ng rate (`-s`, words per minute) for OpenAI's `speed` (0.25-4, 0 meaning 1). */
export function espeakRate(speed: number): number {
  const s = speed || 1;
  return Math.round(Math.min(MAX_WPM, Math.max(MIN_WPM, BASE_WPM * s)));
}
