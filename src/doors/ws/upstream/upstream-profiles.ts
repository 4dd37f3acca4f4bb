/**
 * The upstream realtime profiles of a door, resolved once when the door is
 * attached: each `upstream: provider/model` profile gets its endpoint
 * (`upstream-target.ts`) and its engine route (for log and metric labels).
 * A profile that names a missing provider or one not of type openai or
 * azure, an unknown Azure deployment, or a model that
 * provider refuses, throws at start with the config field named.
 */
import type { ProviderConfig } from "../../../config/schema.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import type { Route } from "../../../engine/router.js";
import type { StreamEngine } from "../../../engine/stream-engine.js";
import type { ProfileRegistry } from "../profiles.js";
import { resolveUpstreamTarget, type UpstreamTarget } from "./upstream-target.js";

/** An upstream profile, ready to connect. */
export interface UpstreamProfile {
  readonly target: UpstreamTarget;
  readonly route: Route;
}

/** Resolves every upstream profile of `profiles`; throws a SpillwayError naming the field of a bad one. */
export function resolveUpstreamProfiles(
  profiles: ProfileRegistry,
  providers: Readonly<Record<string, ProviderConfig>>,
  engine: StreamEngine,
): Map<string, UpstreamProfile> {
  const out = new Map<string, UpstreamProfile>();
  for (const id of profiles.ids) {
    const upstream = profiles.get(id).upstream;
    if (!upstream) continue;
    const target = resolveUpstreamTarget(id, upstream, providers);
    let route: Route;
    try {
      route = engine.router.resolve(upstream);
    } catch (e) {
      const field = `realtime.profiles.${id}.upstream`;
      throw new SpillwayError(Code.InvalidArgument, `${field}: ${SpillwayError.from(e).message}`, { param: field, cause: e });
    }
    out.set(id, { target, route });
  }
  return out;
}
