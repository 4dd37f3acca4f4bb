import { createHash } from "node:crypto";
import { GenerateRequest, SynthesizeRequest } from "../../gen/spillway/v1/request.js";

function sorted(map: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(map).sort()) out[k] = map[k]!;
  return out;
}

/**
 * The cache key of a request: SHA-256 of the capability, the resolved model
 * id (after aliases) and the request's protobuf encoding with that model id
 * and its maps in sorted order. Everything the request carries counts
 * (messages, tools, tool choice, sampling parameters, response format,
 * reasoning, user, metadata, `extra`); the gateway key and request id are
 * not in the request, so they never split entries, and neither does whether
 * the client streams (`stream`): a hit replays chunks either way.
 */
export function cacheKeyOf(capability: "generate" | "synthesize", req: GenerateRequest | SynthesizeRequest, routeId: string): string {
  const hash = createHash("sha256").update(capability).update("\0").update(routeId).update("\0");
  if (capability === "generate") {
    const g = req as GenerateRequest;
    hash.update(GenerateRequest.encode({ ...g, model: routeId, metadata: sorted(g.metadata), upstreamHeaders: sorted(g.upstreamHeaders), stream: undefined }).finish());
  } else {
    hash.update(SynthesizeRequest.encode({ ...(req as SynthesizeRequest), model: routeId }).finish());
  }
  return hash.digest("hex");
}
