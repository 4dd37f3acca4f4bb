/**
 * Whether the speaker of a door session is talking right now, as the
 * session's turn detector hears it frame by frame — shared from the door
 * (the realtime session, which runs the VAD) to the providers of its calls
 * through the session's {@link ProviderSession} (stored under
 * {@link SPEECH_ACTIVITY_KEY}), so a streaming recognizer can frame its
 * audio by it: large frames while speech lasts (fewer socket writes), and
 * what it holds sent at once when speech pauses, so the recognizer's own
 * endpointing hears the end of speech as soon as the VAD does
 * (docs/ARCHITECTURE.md, "Deepgram frames follow the VAD").
 *
 * Not the turn state: `speaking` goes false at the first frame under the
 * VAD's threshold, long before `speech_stopped` (which waits for
 * `silence_duration_ms` of such frames), and back to true at the next
 * frame above it.
 */
import type { ProviderSession, SessionResource } from "../engine/provider-session.js";

/** The key a door stores its {@link SpeechActivity} under in a {@link ProviderSession}. */
export const SPEECH_ACTIVITY_KEY = "speech-activity";

/** A listener: told each change, `speaking` true when a voiced frame follows quiet ones, false at the first quiet frame. */
export type SpeechActivityListener = (speaking: boolean) => void;

/** The speaker's voice activity of one session (see the file comment). */
export class SpeechActivity implements SessionResource {
  private now = false;
  private listeners: SpeechActivityListener[] = [];

  /** True while the detector's latest frame was voiced. Default false. */
  get speaking(): boolean {
    return this.now;
  }

  /** True while a listener is subscribed (someone acts on the reports: the detector then reports the first quiet frame without holding it). */
  get listened(): boolean {
    return this.listeners.length > 0;
  }

  /** Reports the detector's latest frame; listeners hear only changes, in order. A listener that throws is skipped (the others still hear it). */
  set(speaking: boolean): void {
    if (speaking === this.now) return;
    this.now = speaking;
    for (const l of this.listeners) {
      try {
        l(speaking);
      } catch {
        // A provider's framing must not break the session's VAD.
      }
    }
  }

  /** Calls `listener` on each change from now on; returns the function that stops it. */
  subscribe(listener: SpeechActivityListener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** The session ended: listeners are dropped. */
  close(): void {
    this.listeners = [];
  }
}

/** The session's {@link SpeechActivity}, or undefined when its door runs no turn detector (gRPC, HTTP). */
export function speechActivityOf(session: ProviderSession | undefined): SpeechActivity | undefined {
  const r = session?.get(SPEECH_ACTIVITY_KEY);
  return r instanceof SpeechActivity ? r : undefined;
}
