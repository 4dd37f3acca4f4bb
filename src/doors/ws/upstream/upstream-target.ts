/**
 * Where an upstream realtime profile connects, from the provider named by
 * `upstream: <provider>/<model>`:
 *
 * - an `openai` provider: its base URL (https → wss, http → ws, then
 *   `/realtime?model=<model>`), the key (`Authorization: Bearer`; the first
 *   of `apiKeys` when several are set) and its extra headers;
 * - an `azure` provider (`azure/<deployment>`): the deployment's realtime
 *   WebSocket as `providers/azure/azure-realtime.ts` builds it (GA
 *   `/openai/v1/realtime?model=…` with api-version `v1`, else the preview
 *   `/openai/realtime?api-version=…&deployment=…`; `api-key` or an Entra
 *   token). When the provider lists its deployments (`models`), the
 *   deployment must be one of them.
 *
 * Checked when the door is attached, so a profile that names a missing
 * provider, a provider of another type, or an unknown Azure deployment
 * stops the gateway at start with the field named.
 */
import type { ProviderConfig } from "../../../config/schema.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import { azureRealtimeEndpoint } from "../../../providers/azure/azure-realtime.js";

/** An upstream Realtime endpoint. */
export interface UpstreamTarget {
  /** `provider/model` as configured. */
  readonly id: string;
  readonly provider: string;
  /** The model name the upstream knows. */
  readonly model: string;
  /** `wss://…/realtime?model=…` (Azure preview: `?api-version=…&deployment=…`), without `intent`. */
  readonly url: string;
  /** Headers of the upgrade request (auth and the provider's own). */
  readonly headers: Readonly<Record<string, string>>;
}

/** The wss:// (or ws://) Realtime URL for `model` on an OpenAI-style `baseUrl` (`https://api.openai.com/v1`). */
export function realtimeUrlOf(baseUrl: string, model: string): string {
  const u = new URL(baseUrl);
  u.protocol = u.protocol === "http:" ? "ws:" : "wss:";
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/realtime`;
  u.search = "";
  u.searchParams.set("model", model);
  return u.toString();
}

/**
 * Resolves `upstream` (`openai/gpt-realtime`, `azure/<deployment>`) of
 * profile `profileId` against the configured providers. Throws an
 * InvalidArgument SpillwayError naming `realtime.profiles.<id>.upstream`
 * when the provider is missing or not of type `openai` or `azure`, the id
 * names no model, or an Azure deployment is not among the provider's
 * `models` (when it lists them).
 */
export function resolveUpstreamTarget(profileId: string, upstream: string, providers: Readonly<Record<string, ProviderConfig>>): UpstreamTarget {
  const field = `realtime.profiles.${profileId}.upstream`;
  const slash = upstream.indexOf("/");
  const providerName = upstream.slice(0, slash);
  const model = upstream.slice(slash + 1);
  const p = providers[providerName];
  if (!p || (p.type !== "openai" && p.type !== "azure")) {
    throw new SpillwayError(
      Code.InvalidArgument,
      `${field}: '${upstream}' needs a provider '${providerName}' of type openai (the OpenAI Realtime API) or azure (an Azure OpenAI realtime deployment); ${p ? `'${providerName}' is of type ${p.type}` : "none is configured"}.`,
      { param: field },
    );
  }
  if (!model) throw new SpillwayError(Code.InvalidArgument, `${field}: '${upstream}' names no model.`, { param: field });
  if (p.type === "azure") {
    if (p.models && !p.models.includes(model)) {
      throw new SpillwayError(
        Code.InvalidArgument,
        `${field}: '${upstream}' names the deployment '${model}', which is not among providers.${providerName}.models (${p.models.join(", ")}).`,
        { param: field },
      );
    }
    const azure = azureRealtimeEndpoint(p, model);
    return { id: upstream, provider: providerName, model, url: azure.url, headers: azure.headers };
  }
  const key = p.apiKey ?? p.apiKeys?.[0]?.key;
  const headers: Record<string, string> = { ...(p.headers ?? {}) };
  if (key) headers["authorization"] = `Bearer ${key}`;
  return { id: upstream, provider: providerName, model, url: realtimeUrlOf(p.baseUrl, model), headers };
}
