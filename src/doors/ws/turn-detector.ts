/**
 * Turn detection for `server_vad` / `semantic_vad`: one interface over the
 * detectors, and the choice between them. Silero VAD (a neural model,
 * `silero-vad.ts`) is the default; the energy VAD (`vad.ts`) is used when
 * config says `realtime.vad.engine: energy`, and as the fallback when the
 * model cannot be loaded. Both report positions in ms of session audio, so
 * results do not depend on how the client cuts its frames.
 */
import type { SileroModel } from "../../audio/silero-model.js";
import { SileroVad } from "./silero-vad.js";
import { EnergyVad, type VadEvent, type VadSettings } from "./vad.js";

/** Which detector runs. */
export type VadEngine = "silero" | "energy";

/** A streaming turn detector over one session's input audio. */
export interface TurnDetector {
  /** The detector actually running (`energy` once Silero fell back). */
  readonly engine: VadEngine;
  /** True between `speech_started` and `speech_stopped` (as far as the detector has heard). */
  readonly inSpeech: boolean;
  /** Audio before this session position (ms) can be part of no future event. */
  readonly retainFromMs: number;
  /** Changes the settings; takes effect from the next frame. */
  configure(settings: VadSettings): void;
  /**
   * Feeds session audio. Events go to the `onEvent` callback: at once (energy)
   * or when inference of the frames has run (Silero), always in order.
   */
  push(samples: Int16Array): void;
  /** Forgets the speech state and any audio not yet analysed (a commit or a clear). */
  reset(): void;
  /** Stops: no event is reported after this. */
  close(): void;
}

/** What a detector is made with. */
export interface TurnDetectorOptions {
  readonly settings: VadSettings;
  /** Rate of the pushed audio. */
  readonly sampleRate: number;
  /** Session position (ms) of the first pushed sample. */
  readonly startMs: number;
  /** Receives speech events, in order. */
  readonly onEvent: (e: VadEvent) => void;
  /**
   * Hears each analysed frame's decision, voiced (true: at or above
   * `threshold`) or quiet, when it differs from the last one (starts
   * quiet). Finer than the events: the first quiet frame, not the end of
   * `silence_duration_ms`. Optional (the session's `SpeechActivity`).
   */
  readonly onVoice?: ((voiced: boolean) => void) | undefined;
  /**
   * Whether anyone acts on `onVoice` reports right now (the session: a
   * provider listens to its `SpeechActivity`, e.g. Deepgram's framing, which
   * flushes at the first quiet frame). While true Silero holds no frame
   * whose report could be that first quiet frame (see `SileroVad`, pairs).
   * Absent: true when `onVoice` is set.
   */
  readonly voiceHeard?: (() => boolean) | undefined;
}

/**
 * A detector for `engine`: Silero over `model` (the shared, possibly still
 * loading model; a rejected one makes the detector run the energy VAD), or
 * the energy VAD.
 */
export function createTurnDetector(engine: VadEngine, model: Promise<SileroModel> | undefined, opts: TurnDetectorOptions): TurnDetector {
  if (engine === "silero" && model) return new SileroVad(model, opts);
  return new EnergyDetector(opts);
}

/** The energy VAD behind the {@link TurnDetector} interface (events reported synchronously). */
class EnergyDetector implements TurnDetector {
  readonly engine = "energy";
  private readonly vad: EnergyVad;
  private closed = false;

  constructor(private readonly opts: TurnDetectorOptions) {
    this.vad = new EnergyVad(opts.settings, opts.sampleRate, opts.startMs);
  }

  get inSpeech(): boolean {
    return this.vad.inSpeech;
  }

  get retainFromMs(): number {
    return this.vad.retainFromMs;
  }

  configure(settings: VadSettings): void {
    this.vad.configure(settings);
  }

  push(samples: Int16Array): void {
    const events = this.vad.push(samples);
    // The piece's last frame decides (reported before its events: a piece that starts speech is voiced, one that stops it quiet).
    this.opts.onVoice?.(this.vad.voiced);
    for (const e of events) {
      if (this.closed) return;
      this.opts.onEvent(e);
    }
  }

  reset(): void {
    this.vad.reset();
  }

  close(): void {
    this.closed = true;
  }
}
