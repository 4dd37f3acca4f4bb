/**
 * Turn detection with Silero VAD: session audio (24 kHz pcm16, or 8 kHz
 * decoded G.711) is resampled to 16 kHz and cut into 32 ms frames; each frame's speech probability comes
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
 * events come a few ms after the audio that caused them, in order; in
 * speech, away from a possible end, a frame is held and run with the next
 * one as a pair, two steps of one model wake-up (`holds`). If the
 * model fails to load, or inference fails, the detector says so once in the
 * log and goes on with the energy VAD over the same audio.
 */
import { RationalResampler } from "../../audio/rational-resample.js";
import { Resampler } from "../../audio/resample.js";
import { SILERO_FRAME, SILERO_FRAME_MS, SILERO_RATE, type FrameUrgency, type SileroModel, type SileroState } from "../../audio/silero-model.js";
import { logger } from "../../observability/logger.js";
import type { TurnDetector, TurnDetectorOptions, VadEngine } from "./turn-detector.js";
import { EnergyVad, type VadEvent, type VadSettings } from "./vad.js";

/** Frames in a row at or above the threshold that start speech (64 ms: a noise spike of one frame does not). */
export const MIN_SPEECH_FRAMES = 2;
/** How far under `threshold` a frame must be to count as silence. */
export const NEGATIVE_MARGIN = 0.15;
/**
 * A frame whose every sample is under this level (of full scale: about
 * −60 dBFS, ±33 of 32768) is silence without asking the model: its
 * probability is 0 and the model's state does not advance (it restarts
 * fresh after {@link SILENT_RESET_FRAMES} such frames, as the state of a
 * model that heard that silence would have settled). Saves the inference
 * of digital silence (a muted or idle line, the gaps of synthesized audio);
 * a room's or a phone line's noise floor is usually above it, and then
 * every frame runs.
 */
export const SILENT_PEAK = 0.001;
/** Silent frames in a row after which the model's state starts fresh (320 ms). */
export const SILENT_RESET_FRAMES = 10;

/**
 * Longest a held frame (see `SileroVad.holds`) waits for the stream's next
 * frame before it runs alone (ms): two frames. A client appending in real
 * time completes a 32 ms frame every 20–40 ms (20 ms pieces) or several at
 * once (larger pieces), so only a client slower than real time, or one that
 * stopped sending, lets it pass.
 */
export const HOLD_MS = 2 * SILERO_FRAME_MS;

/** Spare frames a detector keeps (a queue longer than this is rare: the model keeps up). */
const MAX_SPARE_FRAMES = 8;

let warned = false;

/**
 * Session audio → the model's 16 kHz floats: a polyphase filter down from
 * 24 kHz (cheap: only the output samples are computed), interpolation up
 * from 8 kHz (telephony), a plain conversion at 16 kHz.
 */
function toModelRate(rate: number): { push(s: Int16Array): Float32Array } {
  if (rate > SILERO_RATE) {
    try {
      return new RationalResampler(rate, SILERO_RATE);
    } catch {
      // Not a small ratio (44.1 kHz …): the general resampler below.
    }
  }
  const r = new Resampler(rate, SILERO_RATE);
  return {
    push(s) {
      const pcm = r.push(s);
      const out = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
      return out;
    },
  };
}

/** True when every sample of `frame` is under {@link SILENT_PEAK}. */
function isSilent(frame: Float32Array): boolean {
  for (let i = 0; i < frame.length; i++) {
    const x = frame[i]!;
    if (x > SILENT_PEAK || x < -SILENT_PEAK) return false;
  }
  return true;
}

/** A Silero-backed {@link TurnDetector}. */
export class SileroVad implements TurnDetector {
  private settings: VadSettings;
  private model: SileroModel | undefined;
  private state: SileroState | undefined;
  private fallback: EnergyVad | undefined;
  /** Whole frames (16 kHz, floats) not analysed yet, with the input samples each completed. */
  private readonly queue: Array<{ readonly frame: Float32Array; readonly inSamples: number; readonly silent: boolean }> = [];
  /** Silent frames in a row (see {@link SILENT_PEAK}). */
  private silentRun = 0;
  /** Input samples pushed into the current (incomplete) frame. */
  private fillIn = 0;
  private detach: (() => void) | undefined;
  private running = false;
  /** Armed while the queue's head is held for the next frame (see `holds`); runs it alone when it fires. */
  private holdTimer: NodeJS.Timeout | undefined;
  /** The held head waited {@link HOLD_MS} (or `whenIdle` asked): it runs alone, without its pair. */
  private holdOver = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  /** Bumped by `reset`: inference results of older audio are dropped. */
  private generation = 0;
  private resampler: { push(s: Int16Array): Float32Array };
  private frame: Float32Array = new Float32Array(SILERO_FRAME);
  /**
   * Frames the model is done with, filled again by `cut` instead of a new
   * array per 32 ms (each is 2 KB outside V8's heap, which the collector's
   * threads sweep). A frame comes back only once its inference has settled
   * (the model must not see it change before: test/realtime-cpu-paths.test.ts).
   */
  private readonly spare: Float32Array[] = [];
  private fill = 0;
  /** Input pushed before the model was loaded. */
  private early: Int16Array[] = [];
  /** Input samples taken off the queue (analysed or dropped by a reset). */
  private consumedIn = 0;
  /** Session position (ms) of the first frame since the last reset. */
  private baseMs: number;
  /** Frames analysed since the last reset. */
  private frames = 0;
  private speaking = false;
  /** The last analysed frame was at or above `threshold` (reported to `onVoice` on change). */
  private voiced = false;
  private runStartMs = -1;
  private runFrames = 0;
  private quietMs = 0;

  constructor(
    private readonly modelPromise: Promise<SileroModel>,
    private readonly opts: TurnDetectorOptions,
  ) {
    this.settings = opts.settings;
    this.resampler = toModelRate(opts.sampleRate);
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
      const events = this.fallback.push(samples);
      this.voice(this.fallback.voiced);
      this.emitAll(events);
      return;
    }
    if (!this.model) {
      // Until the model is loaded, keep the input as it came (the fallback may need it).
      this.early.push(samples);
    } else {
      this.cut(samples);
    }
    // A held head waits for a second frame (or its timer).
    if (!this.running && (this.holdTimer === undefined || this.queue.length >= 2)) void this.run();
  }

  /** Resamples `samples` to 16 kHz and cuts them into whole frames on the queue (the rest waits for more). */
  private cut(samples: Int16Array): void {
    const pcm = this.resampler.push(samples);
    this.fillIn += samples.length;
    let at = 0;
    while (at < pcm.length) {
      const n = Math.min(SILERO_FRAME - this.fill, pcm.length - at);
      this.frame.set(pcm.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill < SILERO_FRAME) break;
      // The whole input chunk is counted with the frame it completes (positions only need whole chunks).
      this.queue.push({ frame: this.frame, inSamples: this.fillIn, silent: isSilent(this.frame) });
      this.fillIn = 0;
      this.frame = this.spare.pop() ?? new Float32Array(SILERO_FRAME);
      this.fill = 0;
    }
  }

  reset(): void {
    this.generation++;
    this.endHold();
    this.clearSpeech();
    if (this.fallback) {
      this.fallback.reset();
      return;
    }
    for (const c of this.queue) this.consumedIn += c.inSamples;
    for (const c of this.early) this.consumedIn += c.length;
    this.consumedIn += this.fillIn;
    this.queue.length = 0;
    this.early = [];
    this.fillIn = 0;
    this.baseMs = this.positionMs();
    this.frames = 0;
    this.silentRun = 0;
    this.fill = 0;
    this.frame = new Float32Array(SILERO_FRAME);
    this.resampler = toModelRate(this.opts.sampleRate);
    // A new object: a frame still in flight advances the old state, not this one.
    if (this.model) this.state = this.model.newState();
  }

  close(): void {
    this.closed = true;
    this.endHold();
    this.queue.length = 0;
    this.early = [];
    this.detach?.();
    this.wakeIdle();
  }

  /** Resolves once every pushed frame has been analysed (at once when none waits). */
  whenIdle(): Promise<void> {
    if (!this.running && ((this.queue.length === 0 && this.early.length === 0) || this.closed || this.fallback)) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    // A held frame runs now, alone (and none is held while someone waits): no more audio may come.
    if (this.holdTimer !== undefined) this.releaseHold();
    return idle;
  }

  /** The held head runs alone (its {@link HOLD_MS} passed, or `whenIdle`). */
  private releaseHold(): void {
    this.endHold();
    this.holdOver = true;
    if (!this.running) void this.run();
  }

  private endHold(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.holdOver = false;
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
        let model: SileroModel;
        try {
          model = await this.modelPromise;
        } catch (e) {
          this.fallBack(e);
          return;
        }
        if (this.closed) return;
        this.model = model;
        this.state = model.newState();
        this.detach = model.attach();
        const early = this.early;
        this.early = [];
        for (const c of early) this.cut(c);
      }
      while (this.queue.length > 0 && !this.closed) {
        const { frame, inSamples, silent } = this.queue[0]!;
        const generation = this.generation;
        let p = 0;
        if (silent) {
          if (++this.silentRun === SILENT_RESET_FRAMES) this.state = this.model.newState();
        } else if (this.model.pair && this.holds()) {
          const next = this.queue[1];
          // Not while `whenIdle` waits: no more audio may come.
          if (!next && !this.holdOver && this.idleWaiters.length === 0) {
            // Held: it runs with the stream's next frame, in one wake-up of the model (push restarts the loop).
            this.holdTimer ??= setTimeout(() => this.releaseHold(), HOLD_MS).unref();
            return;
          }
          this.endHold();
          this.silentRun = 0;
          let ps: [number, number] | number;
          try {
            // A silent next frame runs no inference: the head goes alone.
            ps = next && !next.silent ? await this.model.pair(frame, next.frame, this.state!, "relaxed") : await this.model.probability(frame, this.state!, "relaxed");
          } catch (e) {
            this.fallBack(e);
            return;
          }
          if (this.closed) return;
          if (typeof ps === "number") {
            p = ps;
          } else {
            this.done(frame);
            this.done(next!.frame);
            if (generation !== this.generation) continue;
            this.queue.shift();
            this.queue.shift();
            this.consumedIn += inSamples + next!.inSamples;
            this.step(ps[0]);
            this.step(ps[1]);
            continue;
          }
        } else {
          this.silentRun = 0;
          try {
            p = await this.model.probability(frame, this.state!, this.urgency());
          } catch (e) {
            this.fallBack(e);
            return;
          }
        }
        if (this.closed) return;
        // The model is done with the frame (its inference settled, or it ran none).
        this.done(frame);
        // A reset while the frame ran: the queue was emptied, the frame is from before it.
        if (generation !== this.generation) continue;
        this.queue.shift();
        this.consumedIn += inSamples;
        this.step(p);
      }
    } finally {
      this.running = false;
      if (this.holdTimer === undefined) this.wakeIdle();
    }
  }

  /** The model is done with `frame`: it may be filled again. */
  private done(frame: Float32Array): void {
    if (this.spare.length < MAX_SPARE_FRAMES) this.spare.push(frame);
  }

  /**
   * Whether the next (non-silent) frame is held, to run with the stream's
   * following frame as a pair (`SileroModel.pair`): only in speech while the
   * quiet heard so far plus both frames stays under `silenceDurationMs`, so
   * neither can end the turn (nor start one: speech has started; a barge-in
   * is a `speech_started`). Out of speech, and in speech from two frames
   * before a possible end, frames are never held. While someone acts on the
   * voice reports (`voiceHeard`: Deepgram's framing flushes at the first quiet
   * frame, and its endpointing hears the silence from then), a frame after a
   * voiced one is not held either: it could be that first quiet frame. A
   * held frame after a quiet one can only report voiced later, which makes
   * Deepgram's frames smaller for as long, never later.
   */
  private holds(): boolean {
    if (!this.speaking || this.quietMs + 2 * SILERO_FRAME_MS >= this.settings.silenceDurationMs) return false;
    return !this.voiced || !(this.opts.voiceHeard ? this.opts.voiceHeard() : this.opts.onVoice !== undefined);
  }

  /**
   * Whether the next frame's result can start or end a turn (`"now"`: its
   * event waits for the batch) or only move the counts (`"relaxed"`: the
   * model may hold it longer to batch it with other streams' frames). Out of
   * speech a frame starts speech only after {@link MIN_SPEECH_FRAMES} − 1
   * voiced ones; in speech it ends it only when the quiet heard so far plus
   * this frame reaches `silenceDurationMs`. A relaxed frame's `onVoice` report
   * may come up to a frame later (Deepgram's framing follows it).
   */
  private urgency(): FrameUrgency {
    if (!this.speaking) return this.runFrames + 1 >= MIN_SPEECH_FRAMES ? "now" : "relaxed";
    return this.quietMs + SILERO_FRAME_MS >= this.settings.silenceDurationMs ? "now" : "relaxed";
  }

  private step(p: number): void {
    const startMs = this.nextFrameMs();
    this.frames++;
    const endMs = this.nextFrameMs();
    const t = this.settings.threshold;
    this.voice(p >= t);
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
    this.detach?.();
    this.endHold();
    this.clearSpeech();
    this.fallback = new EnergyVad(this.settings, this.opts.sampleRate, this.positionMs());
    // Audio cut into frames is gone as input samples; only what came before the model loaded (the usual case: it failed to load) is replayed.
    for (const c of this.queue) this.consumedIn += c.inSamples;
    this.queue.length = 0;
    const early = this.early.splice(0);
    for (const c of early) {
      this.consumedIn += c.length;
      const events = this.fallback.push(c);
      this.voice(this.fallback.voiced);
      this.emitAll(events);
    }
  }

  private voice(voiced: boolean): void {
    if (voiced === this.voiced || this.closed) return;
    this.voiced = voiced;
    try {
      this.opts.onVoice?.(voiced);
    } catch (err) {
      logger.error({ err }, "realtime VAD voice report failed");
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
