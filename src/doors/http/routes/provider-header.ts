import type { EngineStream } from "../../../engine/active-stream.js";

/** The `x-spillway-provider` header: which provider served the stream. */
export function providerHeader(stream: EngineStream): readonly [string, string] {
  return ["x-spillway-provider", stream.route.provider.name];
}

/**
 * Headers saying what served the stream: the provider, the model id (which
 * differs from the requested one after a fallback) and, when the provider
 * has several keys, the key's name (never the key).
 */
export function routeHeaders(stream: EngineStream): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [providerHeader(stream), ["x-spillway-model", stream.route.id]];
  const key = stream.labels["key"];
  if (key) out.push(["x-spillway-key", key]);
  return out;
}
