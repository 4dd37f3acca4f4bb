/** The Silero model for tests that need onnxruntime-node. */
import type { TestContext } from "node:test";
import { loadSileroModel, type SileroModel } from "../../src/audio/silero-model.js";

/** The shared Silero model, or undefined after marking `t` skipped when onnxruntime-node cannot load here. */
export async function sileroOrSkip(t: TestContext): Promise<SileroModel | undefined> {
  try {
    return await loadSileroModel();
  } catch {
    t.skip("onnxruntime-node cannot load here");
    return undefined;
  }
}
