import type { EngineStream } from "../../../engine/active-stream.js";

/** The `x-spillway-provider` header: which provider served the stream. */
export function providerHeader(stream: EngineStream): readonly [string, string] {
  return ["x-spillway-provider", stream.route.provider.name];
}
