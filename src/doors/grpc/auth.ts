import type { Metadata } from "@grpc/grpc-js";
import type { Admission } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { CallOptions } from "../../engine/stream-engine.js";
import type { GrpcAuthorize, GrpcDoorContext } from "./context.js";

/** The `authorization` metadata value (`Bearer …`), when there is a text one. */
export function authorizationOf(metadata: Metadata): string | undefined {
  const v = metadata.get("authorization")[0];
  return typeof v === "string" ? v : undefined;
}

/**
 * The gateway's API keys, as the HTTP door checks them: the caller's
 * `authorization: Bearer <key>` metadata is authenticated against the
 * configured keys (`Unauthenticated` when keys are configured and none
 * matches), and the principal goes with the call so the engine applies that
 * key's models, rate and concurrency limits. An open gateway lets every call through.
 */
export function gatewayKeys(admission: Admission): GrpcAuthorize {
  return (metadata) => ({ principal: admission.authenticate(authorizationOf(metadata)) });
}

/**
 * What every call does first: refuse it with `UNAVAILABLE` while the door
 * drains for shutdown, then run the auth hook. Returns the engine call
 * options the hook grants (e.g. the principal).
 */
export async function admitCall(ctx: GrpcDoorContext, metadata: Metadata, method: string): Promise<Partial<CallOptions>> {
  if (ctx.draining?.()) {
    throw new SpillwayError(Code.Unavailable, "The server is shutting down; retry on another instance.", {
      reason: "server_shutting_down",
      retryAfterMs: 1000,
    });
  }
  return (await ctx.authorize?.(metadata, method)) ?? {};
}
