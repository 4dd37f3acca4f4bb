import { ModelKind, type ModelInfo } from "../../gen/spillway/v1/request.js";
import { getJson } from "../shared/upstream-http.js";
import { isObj, str } from "../shared/json.js";
import type { BedrockSigner } from "./sigv4.js";

/** How long a fetched model list is reused (ms). */
const MODEL_LIST_TTL_MS = 60_000;
const MODEL_LIST_TIMEOUT_MS = 5_000;

/** A model entry of the provider's list. */
export function bedrockModelInfo(provider: string, id: string): ModelInfo {
  return { id: `${provider}/${id}`, ownedBy: provider, kinds: [ModelKind.MODEL_KIND_TEXT], available: true, unavailableReason: "" };
}

/**
 * The models a Bedrock account can call, from Bedrock's control plane
 * (`{controlUrl}/foundation-models?byOutputModality=TEXT&byInferenceType=ON_DEMAND`,
 * the text models callable by id, and `/inference-profiles`, the ids of the
 * cross-region profiles newer models are only served through), signed like
 * every request. Cached for a minute; a failure of either list is the
 * call's failure (the engine then lists this provider's models as none).
 */
export function createBedrockModelList(opts: { provider: string; controlUrl: string; signer: BedrockSigner }): (signal?: AbortSignal) => Promise<ModelInfo[]> {
  let cached: { at: number; models: ModelInfo[] } | undefined;
  const get = async (path: string, signal: AbortSignal): Promise<unknown> => {
    const url = new URL(`${opts.controlUrl}${path}`);
    const headers = await opts.signer.sign("GET", url, { accept: "application/json" }, "");
    return await getJson(opts.provider, url.href, headers, signal);
  };
  return async (signal) => {
    if (cached && Date.now() - cached.at < MODEL_LIST_TTL_MS) return cached.models;
    const timeout = AbortSignal.timeout(MODEL_LIST_TIMEOUT_MS);
    const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const [foundation, profiles] = await Promise.all([get("/foundation-models?byOutputModality=TEXT&byInferenceType=ON_DEMAND", s), get("/inference-profiles?maxResults=1000", s)]);
    const ids = new Set<string>();
    const models = isObj(foundation) && Array.isArray(foundation["modelSummaries"]) ? foundation["modelSummaries"] : [];
    for (const m of models) {
      if (!isObj(m) || (isObj(m["modelLifecycle"]) && m["modelLifecycle"]["status"] === "LEGACY")) continue;
      if (str(m["modelId"])) ids.add(str(m["modelId"]));
    }
    const summaries = isObj(profiles) && Array.isArray(profiles["inferenceProfileSummaries"]) ? profiles["inferenceProfileSummaries"] : [];
    for (const p of summaries) if (isObj(p) && p["status"] !== "INACTIVE" && str(p["inferenceProfileId"])) ids.add(str(p["inferenceProfileId"]));
    cached = { at: Date.now(), models: [...ids].map((id) => bedrockModelInfo(opts.provider, id)) };
    return cached.models;
  };
}
