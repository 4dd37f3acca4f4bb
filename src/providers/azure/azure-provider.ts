import type { Provider } from "../../engine/provider.js";
import type { UpstreamProviderOptions } from "../shared/upstream-options.js";
import { createOpenAiProvider, type OpenAiDialect } from "../openai/openai-provider.js";
import { azureContentFilter } from "./content-filter.js";

/** Settings of one Azure OpenAI resource. */
export interface AzureProviderOptions extends UpstreamProviderOptions {
  /** The resource endpoint, `https://<resource>.openai.azure.com` (a trailing `/openai` is accepted). */
  readonly baseUrl: string;
  /** Sent as `api-key` (keys from `apiKeys` rotate the same way). */
  readonly apiKey?: string | undefined;
  /** An Entra ID access token, sent as `authorization: Bearer …` instead of a key. */
  readonly azureAdToken?: string | undefined;
  /** `api-version` of the deployment routes (`2024-10-21`), or `v1` for the `/openai/v1/…` surface. */
  readonly apiVersion: string;
  /** `api-version` of realtime profiles' WebSocket (`v1`: the GA `/openai/v1/realtime`); default `apiVersion`. See `azure-realtime.ts`. */
  readonly realtimeApiVersion?: string | undefined;
  /** Send chats that fit it to `/responses` (default: on with `apiVersion: v1`). */
  readonly responsesApi?: boolean | undefined;
  /** Deployment names to list in `/v1/models`; else the data plane's deployments list (api-version 2022-12-01) is asked. */
  readonly models?: readonly string[] | undefined;
}

/** The last api-version whose data plane lists deployments. */
const DEPLOYMENTS_LIST_VERSION = "2022-12-01";

/** The resource's base URL: `endpoint` without trailing slashes or a trailing `/openai`. */
export function azureResourceBase(endpoint: string): string {
  return endpoint.replace(/\/+$/, "").replace(/\/openai$/, "");
}

/**
 * Azure's layout of the OpenAI API. Dated versions: `POST
 * {endpoint}/openai/deployments/{deployment}/{route}?api-version=…` (the
 * model id is the deployment's name), `/openai/responses?api-version=…`
 * for Responses. `v1`: `{endpoint}/openai/v1/{route}` with the deployment
 * as the body's `model`. Keys go in `api-key`, not `authorization`. The
 * model list is the data plane's deployments list of api-version 2022-12-01.
 */
export function azureDialect(endpoint: string, apiVersion: string): OpenAiDialect {
  const base = azureResourceBase(endpoint);
  const version = `api-version=${encodeURIComponent(apiVersion)}`;
  return {
    url:
      apiVersion === "v1"
        ? (route) => `${base}/openai/v1${route}`
        : (route, model) => (route === "/responses" ? `${base}/openai/responses?${version}` : `${base}/openai/deployments/${encodeURIComponent(model)}${route}?${version}`),
    // Deployments_List of the data plane (a list of `{id: <deployment>, model, status}`), retired from
    // later api-versions; where it fails, only configured `models` are listed.
    modelsUrl: `${base}/openai/deployments?api-version=${DEPLOYMENTS_LIST_VERSION}`,
    authHeader: (key) => ["api-key", key],
  };
}

/**
 * A provider for Azure OpenAI (`azure/<deployment>`): the OpenAI provider
 * itself — same request builder, same stream mapper, same audio routes —
 * with Azure's URLs and auth, plus Azure's content-filter annotations
 * mapped to content-filter finishes. Usage always comes, since the shared
 * builder sends `stream_options.include_usage`.
 */
export function createAzureProvider(opts: AzureProviderOptions): Provider {
  const { azureAdToken, apiVersion, responsesApi, realtimeApiVersion: _realtime, ...rest } = opts;
  const headers: Record<string, string> = { ...opts.headers };
  if (azureAdToken) headers["authorization"] = `Bearer ${azureAdToken}`;
  return createOpenAiProvider({
    ...rest,
    headers,
    responsesApi: responsesApi ?? apiVersion === "v1",
    dialect: azureDialect(opts.baseUrl, apiVersion),
    chunkHook: azureContentFilter,
  });
}
