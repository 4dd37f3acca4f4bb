import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { Provider } from "../../engine/provider.js";
import { echoGenerate } from "./echo.js";
import { LOCAL_AUDIO_MODELS, localAudioModels, localSynthesize, localTranscribe, notATextModel } from "./local-audio.js";

/** Settings of the local provider. */
export interface LocalProviderOptions {
  /** Prefix of its model ids. Default `local`. */
  readonly name?: string;
  /** Pause before each token of `local/echo` (ms). */
  readonly tokenDelayMs: number;
}

const TEXT_MODELS = ["echo"] as const;

/**
 * `local/realtime`, the realtime door's built-in voice profile (local/stt →
 * local/echo → local/tts; served by src/doors/ws, not routed here), listed
 * for the `local` provider and available when both audio engines are.
 */
function realtimeModels(name: string, audio: readonly ModelInfo[]): ModelInfo[] {
  if (name !== "local") return [];
  const missing = audio.filter((m) => !m.available);
  return [
    {
      id: "local/realtime",
      ownedBy: "spillway",
      kinds: [ModelKind.MODEL_KIND_REALTIME],
      available: missing.length === 0,
      unavailableReason: missing.map((m) => m.unavailableReason).join("; "),
    },
  ];
}

/**
 * The offline provider: engines that run on this machine with no key and no
 * network, so a fresh install streams out of the box.
 */
export function createLocalProvider(opts: LocalProviderOptions): Provider {
  const name = opts.name ?? "local";
  const models: ModelInfo[] = TEXT_MODELS.map((m) => ({
    id: `${name}/${m}`,
    ownedBy: "spillway",
    kinds: [ModelKind.MODEL_KIND_TEXT],
    available: true,
    unavailableReason: "",
  }));
  return {
    name,
    listModels: () => {
      const audio = localAudioModels(name);
      return Promise.resolve([...models, ...audio, ...realtimeModels(name, audio)]);
    },
    checkModel(model) {
      if (!([...TEXT_MODELS, ...LOCAL_AUDIO_MODELS] as readonly string[]).includes(model)) {
        throw new SpillwayError(
          Code.NotFound,
          `The model '${name}/${model}' does not exist (local models: ${[...TEXT_MODELS, ...LOCAL_AUDIO_MODELS].map((m) => `${name}/${m}`).join(", ")}).`,
          { param: "model", reason: "model_not_found" },
        );
      }
    },
    generate: (model, req, ctx) => {
      if (model !== "echo") throw notATextModel(name, model);
      return echoGenerate(req, ctx, { tokenDelayMs: opts.tokenDelayMs });
    },
    synthesize: (model, req, ctx) => localSynthesize(name, model, req, ctx),
    transcribe: (model, config, audio, ctx) => localTranscribe(name, model, config, audio, ctx),
  };
}
