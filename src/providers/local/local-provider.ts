import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { Provider } from "../../engine/provider.js";
import { echoGenerate } from "./echo.js";

/** Settings of the local provider. */
export interface LocalProviderOptions {
  /** Prefix of its model ids. Default `local`. */
  readonly name?: string;
  /** Pause before each token of `local/echo` (ms). */
  readonly tokenDelayMs: number;
}

const TEXT_MODELS = ["echo"] as const;

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
    listModels: () => Promise.resolve(models),
    checkModel(model) {
      if (!(TEXT_MODELS as readonly string[]).includes(model)) {
        throw new SpillwayError(
          Code.NotFound,
          `The model '${name}/${model}' does not exist (local models: ${models.map((m) => m.id).join(", ")}).`,
          { param: "model", openAiCode: "model_not_found" },
        );
      }
    },
    generate: (_model, req, ctx) => echoGenerate(req, ctx, { tokenDelayMs: opts.tokenDelayMs }),
  };
}
