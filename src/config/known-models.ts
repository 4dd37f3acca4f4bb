import type { Config } from "./schema.js";

/** The local engines' model ids (always there). */
const LOCAL_MODELS = ["local/echo", "local/tts", "local/stt", "local/realtime"];

/**
 * Every model id the config names: aliases' targets, fallbacks, realtime
 * profiles and the models they use, providers' model lists, gateway keys'
 * exact model ids, and the local engines. Metrics label these by name
 * whatever clients send.
 */
export function knownModelIds(config: Config): string[] {
  const out = new Set<string>(LOCAL_MODELS);
  for (const target of Object.values(config.aliases)) out.add(target);
  for (const [model, fallbacks] of Object.entries(config.routing.fallbacks)) {
    out.add(model);
    for (const f of fallbacks) out.add(f);
  }
  for (const [id, profile] of Object.entries(config.realtime.profiles)) {
    out.add(id);
    for (const v of Object.values(profile)) if (typeof v === "string" && v.includes("/")) out.add(v);
  }
  for (const [name, p] of Object.entries(config.providers)) {
    const models = (p as { models?: readonly string[] }).models;
    for (const m of models ?? []) out.add(`${name}/${m}`);
  }
  for (const k of config.auth.keys) for (const m of k.models ?? []) if (!m.endsWith("*")) out.add(m);
  return [...out];
}
