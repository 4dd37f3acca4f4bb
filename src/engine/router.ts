import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";
import type { Provider } from "./provider.js";

/** A model id resolved to the provider that serves it. */
export interface Route {
  readonly provider: Provider;
  /** The model name as the upstream knows it (the id without its prefix). */
  readonly model: string;
  /** The full `provider/model` id. */
  readonly id: string;
}

/** Resolves `provider/model` ids (and configured aliases) to providers. */
export interface Router {
  /** Throws `InvalidArgument` for a malformed id, `NotFound` for an unknown one. */
  resolve(modelId: string): Route;
  /** Every provider, in configuration order. */
  readonly providers: readonly Provider[];
}

/**
 * Creates a router over `providers`. `aliases` maps bare names
 * (`gpt-4o-mini`) to full ids (`openai/gpt-4o-mini`).
 */
export function createRouter(
  providers: readonly Provider[],
  aliases: Readonly<Record<string, string>> = {},
): Router {
  const byName = new Map<string, Provider>();
  for (const p of providers) byName.set(p.name, p);
  return {
    providers,
    resolve(modelId: string): Route {
      // Own keys only: a model named 'constructor' or 'valueOf' is not an alias.
      const id = Object.hasOwn(aliases, modelId) ? aliases[modelId]! : modelId;
      const slash = id.indexOf("/");
      if (slash <= 0 || slash === id.length - 1) {
        throw new SpillwayError(
          Code.NotFound,
          `The model '${modelId}' does not exist: model ids are 'provider/model' (providers: ${[...byName.keys()].join(", ")}).`,
          { param: "model", reason: "model_not_found" },
        );
      }
      const providerName = id.slice(0, slash);
      const provider = byName.get(providerName);
      if (!provider) {
        throw new SpillwayError(
          Code.NotFound,
          `The model '${modelId}' does not exist: no provider '${providerName}' is configured (providers: ${[...byName.keys()].join(", ")}).`,
          { param: "model", reason: "model_not_found" },
        );
      }
      const model = id.slice(slash + 1);
      provider.checkModel?.(model);
      return { provider, model, id };
    },
  };
}
