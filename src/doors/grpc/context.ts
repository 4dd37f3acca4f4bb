import type { Metadata } from "@grpc/grpc-js";
import type { CallOptions, StreamEngine } from "../../engine/stream-engine.js";

/**
 * Decides whether a call may proceed, from its request metadata (the
 * `authorization: Bearer …` entry) and its method path. Returns (or
 * resolves) to let the call through, optionally with engine call options to
 * add (e.g. who is calling, once the engine takes that); throws (or rejects
 * with) a SpillwayError — `Unauthenticated`, `PermissionDenied`,
 * `ResourceExhausted` — to end the call with that status before the engine
 * is touched.
 */
export type GrpcAuthorize = (
  metadata: Metadata,
  method: string,
) => void | Partial<CallOptions> | Promise<void | Partial<CallOptions>>;

/** What every gRPC handler gets. */
export interface GrpcDoorContext {
  readonly engine: StreamEngine;
  /**
   * The auth hook. Absent means every call is let through, which is the
   * gateway's behaviour until gateway API keys exist (the HTTP door does not
   * check keys either); the key system plugs in here, with the same keys as HTTP.
   */
  readonly authorize?: GrpcAuthorize | undefined;
}
