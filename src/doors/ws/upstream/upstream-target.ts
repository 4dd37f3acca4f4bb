/**
 * Where an upstream realtime profile connects: the `openai` provider named
 * by `upstream: <provider>/<model>` gives the base URL (https → wss,
 * http → ws, then `/realtime?model=<model>`), the key (`Authorization:
 * Bearer`; the first of `apiKeys` when several are set) and its extra
 * headers. Checked when the door is attached, so a profile that names a
 * missing or non-OpenAI provider stops the gateway at start with the field
 * named.
 */
import type { ProviderConfig } from "../../../config/schema.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";

/** An upstream Realtime endpoint. */
export interface UpstreamTarget {
  /** `provider/model` as configured. */
  readonly id: string;
  readonly provider: string;
  /** The model name the upstream knows. */
  readonly model: string;
  /** `wss://…/realtime?model=…` (without `intent`). */
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
 * Resolves `upstream` (`openai/gpt-realtime`) of profile `profileId` against
 * the configured providers. Throws an InvalidArgument SpillwayError naming
 * `realtime.profiles.<id>.upstream` when the provider is missing or not of
 * type `openai`.
 */
export function resolveUpstreamTarget(profileId: string, upstream: string, providers: Readonly<Record<string, ProviderConfig>>): UpstreamTarget {
  const field = `realtime.profiles.${profileId}.upstream`;
  const slash = upstream.indexOf("/");
  const providerName = upstream.slice(0, slash);
  const model = upstream.slice(slash + 1);
  const p = providers[providerName];
  if (!p || p.type !== "openai") {
    throw new SpillwayError(
      Code.InvalidArgument,
      `${field}: '${upstream}' needs a provider '${providerName}' of type openai (the OpenAI Realtime API); ${p ? `'${providerName}' is of type ${p.type}` : "none is configured"}.`,
      { param: field },
    );
  }
  if (!model) throw new SpillwayError(Code.InvalidArgument, `${field}: '${upstream}' names no model.`, { param: field });
  const key = p.apiKey ?? p.apiKeys?.[0]?.key;
  const headers: Record<string, string> = { ...(p.headers ?? {}) };
  if (key) headers["authorization"] = `Bearer ${key}`;
  return { id: upstream, provider: providerName, model, url: realtimeUrlOf(p.baseUrl, model), headers };
}
