import type { Metadata } from "@grpc/grpc-js";
import type { CallOptions, StreamEngine } from "../../engine/stream-engine.js";
import type { Observability } from "../../observability/observability.js";
import type { CallScope } from "./call-scope.js";

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
  /** The auth hook; absent, every call is let through. */
  readonly authorize?: GrpcAuthorize | undefined;
  /** True once the door drains for shutdown: new calls get `UNAVAILABLE`. */
  readonly draining?: (() => boolean) | undefined;
  /** Metrics and request logs; none when absent. */
  readonly obs?: Observability | undefined;
  /** Calls in flight (for the active-streams gauge). */
  readonly active: { calls: number };
  /**
   * The scopes of the calls in flight, which the door's forced shutdown
   * ends (grpc-js's `forceShutdown` does not cancel them with channelz off).
   */
  readonly inFlight?: Set<CallScope> | undefined;
}
