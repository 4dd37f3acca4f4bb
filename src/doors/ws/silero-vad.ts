/**
 * Turn detection with Silero VAD: session audio (24 kHz) is resampled to
 * 16 kHz and cut into 32 ms frames; each frame's speech probability comes
 * from the shared model (`audio/silero-model.ts`), with this session's own
 * recurrent state. The settings keep their OpenAI meaning:
 *
 * - `threshold`: the speech probability a frame needs (Silero's own default
 *   is 0.5, as OpenAI's is). Speech starts after {@link MIN_SPEECH_FRAMES}
 *   frames in a row at or above it; it stops after `silenceDurationMs` of
 *   frames under `threshold - 0.15` (hysteresis, as Silero's reference
 *   iterator does; frames in between neither extend nor end the silence).
 * - `prefixPaddingMs`: `audio_start_ms` is that much before the first
 *   speech frame (never before the detector's first audio).
 * - `silenceDurationMs`: `audio_end_ms` is the end of that silence, so the
 *   speech itself ended about `silenceDurationMs` before it (as with OpenAI).
 *
 * Frames run one at a time per session (inference is asynchronous), so
 * events come a few ms after the audio that caused them, in order. If the
 * model fails to load, or inference fails, the detector says so once in the
 * log and goes on with the energy VAD over the same audio.
 */
import { Resampler } from "../../audio/resample.js";
import { SILERO_FRAME, SILERO_FRAME_MS, SILERO_RATE, type SileroModel, type SileroState } from "../../audio/silero-model.js";
import { logger } from "../../observability/logger.js";
import type { TurnDetector, TurnDetectorOptions, VadEngine } from "./turn-detector.js";
import { EnergyVad, type VadEvent, type VadSettings } from "./vad.js";

/** Frames in a row at or above the threshold that start speech (64 ms: a noise spike of one frame does not). */
export const MIN_SPEECH_FRAMES = 2;
/** How far under `threshold` a frame must be to count as silence. */
export const NEGATIVE_MARGIN = 0.15;

let warned = false;

/** A Silero-backed {@link TurnDetector}. */
export class SileroVad implements TurnDetector {
  private settings: VadSettings;
  private model: SileroModel | undefined;
  private state: SileroState | undefined;
  private fallback: EnergyVad | undefined;
  private readonly queue: Int16Array[] = [];
  private running = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Bumped by `reset`: inference results of older audio are dropped. */
  private generation = 0;
  private resampler: Resampler;
  private frame = new Float32Array(SILERO_FRAME);
  private fill = 0;
  /** Input samples taken off the queue (analysed or dropped by a reset). */
  private consumedIn = 0;
  /** Session position (ms) of the first frame since the last reset. */
  private baseMs: number;
  /** Frames analysed since the last reset. */
  private frames = 0;
  private speaking = false;
  private runStartMs = -1;
  private runFrames = 0;
  private quietMs = 0;

  constructor(
    private readonly modelPromise: Promise<SileroModel>,
    private readonly opts: TurnDetectorOptions,
  ) {
    this.settings = opts.settings;
    this.resampler = new Resampler(opts.sampleRate, SILERO_RATE);
    this.baseMs = opts.startMs;
  }

  get engine(): VadEngine {
    return this.fallback ? "energy" : "silero";
  }

  get inSpeech(): boolean {
    return this.fallback ? this.fallback.inSpeech : this.speaking;
  }

  get retainFromMs(): number {
    if (this.fallback) return this.fallback.retainFromMs;
    const from = this.runStartMs >= 0 ? this.runStartMs : this.nextFrameMs();
    return Math.max(this.opts.startMs, from - this.settings.prefixPaddingMs);
  }

  configure(settings: VadSettings): void {
    this.settings = settings;
    this.fallback?.configure(settings);
  }

  push(samples: Int16Array): void {
    if (this.closed || samples.length === 0) return;
    if (this.fallback) {
      this.emitAll(this.fallback.push(samples));
      return;
    }
    this.queue.push(samples);
    if (!this.running) void this.run();
  }

  reset(): void {
    this.generation++;
    this.clearSpeech();
    if (this.fallback) {
      this.fallback.reset();
      return;
    }
    for (const c of this.queue) this.consumedIn += c.length;
    this.queue.length = 0;
    this.baseMs = this.positionMs();
    this.frames = 0;
    this.fill = 0;
    this.frame = new Float32Array(SILERO_FRAME);
    this.resampler = new Resampler(this.opts.sampleRate, SILERO_RATE);
    if (this.model) this.state = this.model.newState();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.wakeIdle();
  }

  /** Resolves once every pushed frame has been analysed (at once when none waits). */
  whenIdle(): Promise<void> {
    if (!this.running && (this.queue.length === 0 || this.closed || this.fallback)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private positionMs(): number {
    return this.opts.startMs + Math.floor((this.consumedIn * 1000) / this.opts.sampleRate);
  }

  private nextFrameMs(): number {
    return this.baseMs + Math.floor(this.frames * SILERO_FRAME_MS);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      if (!this.model) {
        try {
          this.model = await this.modelPromise;
          this.state = this.model.newState();
        } catch (e) {
          this.fallBack(e);
          return;
        }
      }
      chunks: while (this.queue.length > 0 && !this.closed) {
        const chunk = this.queue.shift()!;
        this.consumedIn += chunk.length;
        const pcm = this.resampler.push(chunk);
        for (let i = 0; i < pcm.length; i++) {
          this.frame[this.fill++] = pcm[i]! / 32768;
          if (this.fill < SILERO_FRAME) continue;
          this.fill = 0;
          const generation = this.generation;
          let p: number;
          try {
            p = await this.model.probability(this.frame, this.state!);
          } catch (e) {
            this.fallBack(e);
            return;
          }
          if (this.closed) return;
          // A reset while the frame ran: the rest of this chunk is audio from before it.
          if (generation !== this.generation) continue chunks;
          this.step(p);
        }
      }
    } finally {
      this.running = false;
      this.wakeIdle();
    }
  }

  private step(p: number): void {
    const startMs = this.nextFrameMs();
    this.frames++;
    const endMs = this.nextFrameMs();
    const t = this.settings.threshold;
    if (!this.speaking) {
      if (p < t) {
        this.runStartMs = -1;
        this.runFrames = 0;
        return;
      }
      if (this.runStartMs < 0) this.runStartMs = startMs;
      if (++this.runFrames < MIN_SPEECH_FRAMES) return;
      this.speaking = true;
      this.quietMs = 0;
      const at = Math.max(this.opts.startMs, this.runStartMs - this.settings.prefixPaddingMs);
      this.runStartMs = -1;
      this.emit({ type: "speech_started", audioStartMs: at });
      return;
    }
    if (p >= t) {
      this.quietMs = 0;
      return;
    }
    if (p >= Math.max(0.01, t - NEGATIVE_MARGIN)) return;
    this.quietMs += SILERO_FRAME_MS;
    if (this.quietMs < this.settings.silenceDurationMs) return;
    this.clearSpeech();
    this.emit({ type: "speech_stopped", audioEndMs: endMs });
  }

  private clearSpeech(): void {
    this.speaking = false;
    this.runStartMs = -1;
    this.runFrames = 0;
    this.quietMs = 0;
  }

  /** The model is unusable: go on with the energy VAD from where the analysis stands, over the audio not analysed yet. */
  private fallBack(e: unknown): void {
    if (!warned) {
      warned = true;
      logger.warn({ err: (e as Error)?.message ?? String(e) }, "Silero VAD unavailable; realtime turn detection uses the energy VAD");
    }
    this.clearSpeech();
    this.fallback = new EnergyVad(this.settings, this.opts.sampleRate, this.positionMs());
    const queued = this.queue.splice(0);
    for (const c of queued) {
      this.consumedIn += c.length;
      this.emitAll(this.fallback.push(c));
    }
  }

  private emitAll(events: VadEvent[]): void {
    for (const e of events) this.emit(e);
  }

  private emit(e: VadEvent): void {
    if (this.closed) return;
    try {
      this.opts.onEvent(e);
    } catch (err) {
      logger.error({ err }, "realtime VAD event failed");
    }
  }
}
