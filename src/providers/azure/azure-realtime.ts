/**
 * Azure OpenAI's Realtime WebSocket, for realtime profiles
 * `{ upstream: azure/<deployment> }`: the URL and the upgrade headers, from
 * the same settings (and the same URL base and auth header) as the
 * provider's HTTP routes.
 *
 * - `realtimeApiVersion` (else `apiVersion`) `v1`: the GA endpoint,
 *   `wss://{resource}.openai.azure.com/openai/v1/realtime?model={deployment}`.
 * - A dated version (`2025-04-01-preview`): the preview endpoint,
 *   `wss://{resource}.openai.azure.com/openai/realtime?api-version={v}&deployment={deployment}`,
 *   which is also what the openai SDK's `OpenAIRealtimeWS.azure()` opens.
 *   Azure serves realtime on preview versions only (from 2024-10-01-preview);
 *   a GA dated version such as 2024-10-21 is refused by Azure at the upgrade.
 *
 * Keys go in `api-key` (the first of `apiKeys` when several are set); an
 * Entra ID token in `authorization: Bearer`. https → wss, http → ws.
 */
import { azureDialect, azureResourceBase } from "./azure-provider.js";

/** The settings of an `azure` provider that the realtime endpoint reads. */
export interface AzureRealtimeSettings {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly realtimeApiVersion?: string | undefined;
  readonly apiKey?: string | undefined;
  readonly apiKeys?: ReadonlyArray<{ readonly key: string }> | undefined;
  readonly azureAdToken?: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** Where a realtime session on one deployment connects. */
export interface AzureRealtimeEndpoint {
  /** `wss://…/openai/v1/realtime?model=…` or `wss://…/openai/realtime?api-version=…&deployment=…`. */
  readonly url: string;
  /** Upgrade headers: the provider's `headers`, then `api-key` or `authorization`. */
  readonly headers: Readonly<Record<string, string>>;
  /** `ga` for `/openai/v1/realtime`, `preview` for `/openai/realtime?api-version=…`. */
  readonly form: "ga" | "preview";
}

/** The realtime WebSocket URL of `deployment` on the resource `endpoint` with `apiVersion` (`v1` or dated). */
export function azureRealtimeUrl(endpoint: string, apiVersion: string, deployment: string): string {
  const u = new URL(azureResourceBase(endpoint));
  u.protocol = u.protocol === "http:" ? "ws:" : "wss:";
  const base = u.pathname.replace(/\/+$/, "");
  if (apiVersion === "v1") {
    u.pathname = `${base}/openai/v1/realtime`;
    u.search = "";
    u.searchParams.set("model", deployment);
  } else {
    u.pathname = `${base}/openai/realtime`;
    u.search = "";
    u.searchParams.set("api-version", apiVersion);
    u.searchParams.set("deployment", deployment);
  }
  return u.toString();
}

/** The realtime endpoint of `deployment` for an `azure` provider's settings. Never throws for valid config. */
export function azureRealtimeEndpoint(p: AzureRealtimeSettings, deployment: string): AzureRealtimeEndpoint {
  const version = p.realtimeApiVersion ?? p.apiVersion;
  const headers: Record<string, string> = { ...(p.headers ?? {}) };
  const key = p.apiKey ?? p.apiKeys?.[0]?.key;
  if (p.azureAdToken) headers["authorization"] = `Bearer ${p.azureAdToken}`;
  else if (key) {
    const [name, value] = azureDialect(p.baseUrl, version).authHeader(key);
    headers[name] = value;
  }
  return { url: azureRealtimeUrl(p.baseUrl, version, deployment), headers, form: version === "v1" ? "ga" : "preview" };
}
