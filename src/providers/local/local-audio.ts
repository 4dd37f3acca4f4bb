import { ModelKind, type ModelInfo, type SynthesizeRequest, type TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { engineUnavailable, espeakStatus, pocketsphinxStatus, type EngineStatus } from "./local-engines.js";
import { pocketsphinxTranscribe } from "./stt-pocketsphinx.js";
import { espeakSynthesize } from "./tts-espeak.js";

/** The local audio models: `tts` (espeak-ng) and `stt` (pocketsphinx). */
export const LOCAL_AUDIO_MODELS = ["tts", "stt"] as const;

const KINDS: Readonly<Record<(typeof LOCAL_AUDIO_MODELS)[number], ModelKind>> = {
  tts: ModelKind.MODEL_KIND_SPEECH,
  stt: ModelKind.MODEL_KIND_TRANSCRIPTION,
};

function status(model: string): EngineStatus {
  return model === "tts" ? espeakStatus() : pocketsphinxStatus();
}

/**
 * The local audio models as listed in `/v1/models`, each `available` only
 * when its engine is installed (looked up on every call, so installing one
 * needs no restart); otherwise `unavailable_reason` says what to install.
 */
export function localAudioModels(prefix: string): ModelInfo[] {
  return LOCAL_AUDIO_MODELS.map((m) => {
    const s = status(m);
    return { id: `${prefix}/${m}`, ownedBy: "spillway", kinds: [KINDS[m]], available: !s.reason, unavailableReason: s.reason };
  });
}

function unsupported(prefix: string, model: string, what: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, `The model '${prefix}/${model}' does not support ${what}.`, {
    param: "model",
    reason: "model_not_supported",
  });
}

/** `synthesize` of the local provider: `tts` only; a missing espeak-ng is a 503. */
export function localSynthesize(prefix: string, model: string, req: SynthesizeRequest, ctx: ProviderContext): AsyncIterable<ChunkPayload> {
  if (model !== "tts") throw unsupported(prefix, model, "speech synthesis");
  const s = espeakStatus();
  if (!s.path) throw engineUnavailable(`${prefix}/${model}`, s.reason);
  return espeakSynthesize(s.path, req, ctx);
}

/** `transcribe` of the local provider: `stt` only; a missing pocketsphinx is a 503. */
export function localTranscribe(
  prefix: string,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
): AsyncIterable<ChunkPayload> {
  if (model !== "stt") throw unsupported(prefix, model, "transcription");
  const s = pocketsphinxStatus();
  if (!s.path) throw engineUnavailable(`${prefix}/${model}`, s.reason);
  return pocketsphinxTranscribe(s.path, config, audio, ctx);
}

/** The 400 for a text-generation call to an audio model. */
export function notATextModel(prefix: string, model: string): SpillwayError {
  return unsupported(prefix, model, "text generation");
}
