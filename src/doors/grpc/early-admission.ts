import type { StatusObject } from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import type { Admission, Ticket } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { recordRequest, type Observability } from "../../observability/observability.js";
import { toGrpcError } from "./status.js";

/** The path prefix of the Spillway service's methods: only they are admitted early (health and reflection never are). */
export const SPILLWAY_PATH_PREFIX = "/spillway.v1.SpillwayService/";

/**
 * The door's first look at a call, run by the server interceptor on the
 * request metadata — before grpc-js reads the request message, let alone
 * decodes it (see write-coalescing.ts).
 */
export interface EarlyCheck {
  /** Whether the method at `path` (`/package.Service/Method`) is checked. */
  applies(path: string): boolean;
  /** `Admission.enter()`: a ticket, or throws the refusal (`server_overloaded`). */
  enter(): Ticket;
  /**
   * Records a refused call (metrics, the sampled log line), as the handler
   * did before; `requestId` is the call's `x-request-id` (a new id when
   * absent or empty).
   */
  refused(requestId: unknown, path: string, reason: unknown, startedAt: number): void;
}

/**
 * The early check of the Spillway service's streaming methods (Generate,
 * Synthesize, Transcribe, Attach): `admission.enter()` on the metadata;
 * unary ListModels, health and reflection are not checked (the interceptor
 * only asks for streaming methods, and {@link EarlyCheck.applies} only for
 * the Spillway service). Refusals are recorded on `obs` when given.
 */
export function createEarlyCheck(admission: Admission, obs: Observability | undefined): EarlyCheck {
  return {
    applies: (path) => path.startsWith(SPILLWAY_PATH_PREFIX),
    enter: () => admission.enter(),
    refused: (id, path, reason, startedAt) => {
      if (!obs) return;
      recordRequest(obs, {
        requestId: typeof id === "string" && id ? id.slice(0, 128) : randomUUID(),
        door: "grpc",
        route: path.slice(path.lastIndexOf("/") + 1),
        status: Code[SpillwayError.from(reason).code],
        startedAt,
        summary: undefined,
        error: reason,
        clientDisconnected: false,
      });
    },
  };
}

/** Statuses of the shared refusal errors, built once (grpc-js clones a status's metadata before sending it). */
const statusOfShared = new WeakMap<object, StatusObject>();

/**
 * The status a refused call ends with: the same code, details and trailers
 * (`spillway-error-code`, `spillway-retryable`, `spillway-retry-after-ms`)
 * as {@link toGrpcError} gives the handler; cached for the shared refusal
 * errors `Admission.enter` throws.
 */
export function refusalStatus(reason: unknown): StatusObject {
  const cached = typeof reason === "object" && reason !== null ? statusOfShared.get(reason) : undefined;
  if (cached) return cached;
  const e = toGrpcError(reason);
  const s: StatusObject = { code: e.code!, details: e.details!, metadata: e.metadata! };
  if (reason instanceof SpillwayError) statusOfShared.set(reason, s);
  return s;
}
