import { Metadata, status, type StatusObject } from "@grpc/grpc-js";
import { Code } from "../../engine/code.js";
import { SpillwayError, stackless } from "../../engine/errors.js";

/**
 * The gRPC status for each code: the one table the gRPC door maps errors
 * with. Spillway's codes are the gRPC codes, so the table is the identity;
 * it is spelled out so that a change to either side fails to compile here
 * rather than silently shifting statuses.
 */
const STATUS_FOR_CODE: Readonly<Record<Code, status>> = {
  [Code.Canceled]: status.CANCELLED,
  [Code.Unknown]: status.UNKNOWN,
  [Code.InvalidArgument]: status.INVALID_ARGUMENT,
  [Code.DeadlineExceeded]: status.DEADLINE_EXCEEDED,
  [Code.NotFound]: status.NOT_FOUND,
  [Code.AlreadyExists]: status.ALREADY_EXISTS,
  [Code.PermissionDenied]: status.PERMISSION_DENIED,
  [Code.ResourceExhausted]: status.RESOURCE_EXHAUSTED,
  [Code.FailedPrecondition]: status.FAILED_PRECONDITION,
  [Code.Aborted]: status.ABORTED,
  [Code.OutOfRange]: status.OUT_OF_RANGE,
  [Code.Unimplemented]: status.UNIMPLEMENTED,
  [Code.Internal]: status.INTERNAL,
  [Code.Unavailable]: status.UNAVAILABLE,
  [Code.DataLoss]: status.DATA_LOSS,
  [Code.Unauthenticated]: status.UNAUTHENTICATED,
};

/** The gRPC status code of an error. */
export function grpcStatusOf(err: SpillwayError): status {
  return STATUS_FOR_CODE[err.code];
}

/** Trailer names carrying what the status code and message cannot. */
export const ERROR_TRAILERS = {
  /** The request field at fault, e.g. `messages[0].role`. */
  param: "spillway-error-param",
  /** OpenAI-style machine code, e.g. `model_not_found`. */
  code: "spillway-error-code",
  /** `true` when the same request may succeed later. */
  retryable: "spillway-retryable",
  /** Milliseconds to wait before retrying, when known. */
  retryAfterMs: "spillway-retry-after-ms",
} as const;

/** What grpc-js takes as a failed call's status (`callback(err)` / `emit('error', err)`). */
export type GrpcErrorStatus = Partial<StatusObject> & Error;

/**
 * Turns anything thrown into the status a call ends with: the code from the
 * table, the client-facing message as details (naming the field at fault,
 * when the message does not already), and the machine-readable parts as
 * trailing metadata.
 */
export function toGrpcError(reason: unknown): GrpcErrorStatus {
  const err = SpillwayError.from(reason);
  let details = err.message;
  if (err.param && !details.includes(err.param)) details = `${details} (field: ${err.param})`;
  const metadata = new Metadata();
  if (err.param) metadata.set(ERROR_TRAILERS.param, err.param);
  if (err.reason) metadata.set(ERROR_TRAILERS.code, err.reason);
  metadata.set(ERROR_TRAILERS.retryable, String(err.retryable));
  if (err.retryAfterMs !== undefined) metadata.set(ERROR_TRAILERS.retryAfterMs, String(err.retryAfterMs));
  // A status, not a fault: no stack to capture (refusals are frequent under overload).
  return Object.assign(stackless(() => new Error(details)), { code: grpcStatusOf(err), details, metadata });
}
