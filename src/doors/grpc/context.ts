import type { Metadata } from "@grpc/grpc-js";
import type { StreamEngine } from "../../engine/stream-engine.js";

/**
 * Decides whether a call may proceed, from its request metadata (the
 * `authorization: Bearer …` entry) and its method path. Resolves to let the
 * call through; throws (or rejects with) a SpillwayError — `Unauthenticated`,
 * `PermissionDenied`, `ResourceExhausted` — to end the call with that status
 * before the engine is touched.
 */
export type GrpcAuthorize = (metadata: Metadata, method: string) => void | Promise<void>;

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
