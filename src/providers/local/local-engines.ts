import { existsSync } from "node:fs";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { findExecutable } from "../../audio/which.js";

/** Whether a local engine can run here, and if not, what to install. */
export interface EngineStatus {
  /** Full path of the executable, when found. */
  readonly path: string | undefined;
  /** Empty when available; otherwise e.g. `install espeak-ng`. */
  readonly reason: string;
}

/** Where Debian's `pocketsphinx-en-us` puts the US English model pocketsphinx_continuous uses by default. */
export const POCKETSPHINX_MODEL_DIR = "/usr/share/pocketsphinx/model/en-us";

/** The espeak-ng speech engine (Debian package `espeak-ng`). */
export function espeakStatus(): EngineStatus {
  const path = findExecutable("espeak-ng");
  return { path, reason: path ? "" : "install espeak-ng" };
}

/** The pocketsphinx recognizer and its English model (Debian packages `pocketsphinx`, `pocketsphinx-en-us`). */
export function pocketsphinxStatus(): EngineStatus {
  const path = findExecutable("pocketsphinx_continuous");
  if (!path) return { path, reason: "install pocketsphinx and pocketsphinx-en-us" };
  if (!existsSync(`${POCKETSPHINX_MODEL_DIR}/en-us`)) return { path: undefined, reason: "install pocketsphinx-en-us" };
  return { path, reason: "" };
}

/** The 503 for a call to a local model whose engine is not installed. */
export function engineUnavailable(modelId: string, reason: string): SpillwayError {
  return new SpillwayError(Code.Unavailable, `The model '${modelId}' is unavailable on this server: ${reason}.`, {
    param: "model",
    reason: "model_unavailable",
    retryable: false,
  });
}
