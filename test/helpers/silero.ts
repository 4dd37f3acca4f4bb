/** The Silero model for tests that need onnxruntime-node. */
import type { TestContext } from "node:test";
import { loadSileroModel, type FrameUrgency, type SileroModel, type SileroState } from "../../src/audio/silero-model.js";

/** The shared Silero model, or undefined after marking `t` skipped when onnxruntime-node cannot load here. */
export async function sileroOrSkip(t: TestContext): Promise<SileroModel | undefined> {
  try {
    return await loadSileroModel();
  } catch {
    t.skip("onnxruntime-node cannot load here");
    return undefined;
  }
}

/**
 * A stand-in Silero model with scripted probabilities (frame i gets
 * `script[i]`, 0 past its end) that records how each frame was asked for
 * (its urgency; with `pairs`, `held (…)` and `pair (…)` for a paired run)
 * and answers at once.
 */
export function scriptedSilero(script: readonly number[], pairs = true): { model: SileroModel; asked: string[]; answered: () => number } {
  const asked: string[] = [];
  let i = 0;
  const model: SileroModel = {
    stats: { batches: 0, frames: 0 },
    newState: () => ({ h: new Float32Array(128), c: new Float32Array(128) }),
    attach: () => () => {},
    probability(_f: Float32Array, _s: SileroState, urgency: FrameUrgency = "now") {
      asked.push(urgency);
      return Promise.resolve(script[i++] ?? 0);
    },
    ...(pairs
      ? {
          pair(_a: Float32Array, _b: Float32Array, _s: SileroState, urgency: FrameUrgency = "now") {
            asked.push(`held (${urgency})`, `pair (${urgency})`);
            const r: [number, number] = [script[i] ?? 0, script[i + 1] ?? 0];
            i += 2;
            return Promise.resolve(r);
          },
        }
      : {}),
  };
  return { model, asked, answered: () => asked.length };
}
