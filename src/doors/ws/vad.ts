/**
 * Voice activity detection for `server_vad` turn detection: an energy
 * detector with hysteresis. Each 10 ms frame gets a score in [0, 1] from its
 * RMS level (-60 dBFS → 0, -10 dBFS → 1, linear in dB between); speech
 * starts after {@link MIN_SPEECH_MS} of frames at or above `threshold`, and
 * stops after `silenceDurationMs` of frames below it.
 *
 * The default turn detector is Silero VAD (`silero-vad.ts`); this one is
 * the fallback when the model cannot be loaded, and what config
 * `realtime.vad.engine: energy` picks. It is exact about what it does and
 * fine for close-talking microphones, but any noise as loud as speech
 * starts a turn.
 */

/** The `server_vad` settings the detector uses. */
export interface VadSettings {
  /** Activation threshold in [0, 1]; higher needs louder audio. OpenAI's default 0.5 ≈ -35 dBFS. */
  readonly threshold: number;
  /** Audio kept before the detected start of speech (ms). */
  readonly prefixPaddingMs: number;
  /** Silence that ends speech (ms). */
  readonly silenceDurationMs: number;
}

/** What the detector reports; positions are ms since the stream started. */
export type VadEvent =
  | { readonly type: "speech_started"; readonly audioStartMs: number }
  | { readonly type: "speech_stopped"; readonly audioEndMs: number };

/** Speech shorter than this does not start a turn (clicks, pops). */
export const MIN_SPEECH_MS = 40;
const FRAME_MS = 10;

/** The score of a frame of samples: 0 for silence up to 1 for loud speech. */
export function frameScore(samples: Int16Array, from = 0, to = samples.length): number {
  if (to <= from) return 0;
  let sum = 0;
  for (let i = from; i < to; i++) {
    const s = samples[i]!;
    sum += s * s;
  }
  const rms = Math.sqrt(sum / (to - from));
  if (rms < 1) return 0;
  const db = 20 * Math.log10(rms / 32768);
  return Math.min(1, Math.max(0, (db + 60) / 50));
}

/** A streaming energy VAD over mono 16-bit audio at a fixed rate. */
export class EnergyVad {
  private readonly frameSamples: number;
  private pending = new Int16Array(0);
  /** Samples consumed into whole frames so far. */
  private position = 0;
  private speaking = false;
  private lastLoud = false;
  private loudRunStart = -1;
  private loudMs = 0;
  private quietMs = 0;

  /**
   * @param startMs - the session position (ms) of the first sample pushed, so
   *   events are positions in the session's audio even when the detector
   *   starts late (turn detection switched on mid-session)
   */
  constructor(
    private settings: VadSettings,
    readonly sampleRate: number,
    private readonly startMs = 0,
  ) {
    this.frameSamples = Math.round((sampleRate * FRAME_MS) / 1000);
  }

  /** True between `speech_started` and `speech_stopped`. */
  get inSpeech(): boolean {
    return this.speaking;
  }

  /** True when the last whole frame was at or above `threshold` (false before any). */
  get voiced(): boolean {
    return this.lastLoud;
  }

  /** Audio before this position (ms) can be part of no future event: what a caller may drop between turns. */
  get retainFromMs(): number {
    const from = this.loudRunStart >= 0 ? this.loudRunStart : this.ms(this.position);
    return Math.max(0, from - this.settings.prefixPaddingMs);
  }

  /** Changes the settings; takes effect from the next frame. */
  configure(settings: VadSettings): void {
    this.settings = settings;
  }

  /** Forgets the current speech state (keeps the stream position). */
  reset(): void {
    this.speaking = false;
    this.loudRunStart = -1;
    this.loudMs = 0;
    this.quietMs = 0;
  }

  /** Feeds audio; returns the events it caused, in order. */
  push(samples: Int16Array): VadEvent[] {
    let buf = samples;
    if (this.pending.length > 0) {
      buf = new Int16Array(this.pending.length + samples.length);
      buf.set(this.pending);
      buf.set(samples, this.pending.length);
    }
    const events: VadEvent[] = [];
    let i = 0;
    for (; i + this.frameSamples <= buf.length; i += this.frameSamples) {
      const loud = frameScore(buf, i, i + this.frameSamples) >= this.settings.threshold;
      this.lastLoud = loud;
      const frameStartMs = this.ms(this.position);
      this.position += this.frameSamples;
      const e = this.step(loud, frameStartMs);
      if (e) events.push(e);
    }
    this.pending = buf.slice(i);
    return events;
  }

  private ms(samples: number): number {
    return this.startMs + Math.floor((samples * 1000) / this.sampleRate);
  }

  private step(loud: boolean, frameStartMs: number): VadEvent | undefined {
    if (!this.speaking) {
      if (!loud) {
        this.loudRunStart = -1;
        this.loudMs = 0;
        return undefined;
      }
      if (this.loudRunStart < 0) this.loudRunStart = frameStartMs;
      this.loudMs += FRAME_MS;
      if (this.loudMs < MIN_SPEECH_MS) return undefined;
      this.speaking = true;
      this.quietMs = 0;
      return { type: "speech_started", audioStartMs: Math.max(this.startMs, this.loudRunStart - this.settings.prefixPaddingMs) };
    }
    if (loud) {
      this.quietMs = 0;
      return undefined;
    }
    this.quietMs += FRAME_MS;
    if (this.quietMs < this.settings.silenceDurationMs) return undefined;
    this.reset();
    return { type: "speech_stopped", audioEndMs: this.ms(this.position) };
  }
}
