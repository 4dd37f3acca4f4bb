import { Code } from "./code.js";
import type { StreamError } from "../gen/spillway/v1/chunk.js";

/** Options of a {@link SpillwayError} beyond its code and message. */
export interface SpillwayErrorOptions {
  /** The request field at fault, e.g. `messages[0].role`. */
  param?: string | undefined;
  /**
   * Machine-readable reason, e.g. `model_not_found`, `request_too_large`:
   * finer than the code, shape-neutral (each API shape renders it in its own
   * error body, e.g. OpenAI's `code`).
   */
  reason?: string | undefined;
  /** True when the same request may succeed later (retry, fallback). */
  retryable?: boolean | undefined;
  /** How long the client should wait before retrying, when known. */
  retryAfterMs?: number | undefined;
  /**
   * An HTTP status that says more than the code can (413, 415, or an upstream's
   * own 4xx); the HTTP door's table is used when absent.
   */
  httpStatus?: number | undefined;
  /** True when an upstream reported the error (as opposed to the client's own request being wrong). */
  fromUpstream?: boolean | undefined;
  cause?: unknown;
}

/**
 * The one error type of Spillway: a code from a closed set, a message meant
 * for the client, and what each door needs to render it. Use
 * {@link SpillwayError.from} to turn anything thrown into one.
 */
export class SpillwayError extends Error {
  override readonly name = "SpillwayError";
  readonly code: Code;
  readonly param: string | undefined;
  readonly reason: string | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly httpStatus: number | undefined;
  readonly fromUpstream: boolean;

  constructor(code: Code, message: string, options: SpillwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.param = options.param;
    this.reason = options.reason;
    this.retryable =
      options.retryable ??
      (code === Code.Unavailable || code === Code.ResourceExhausted || code === Code.DeadlineExceeded);
    this.retryAfterMs = options.retryAfterMs;
    this.httpStatus = options.httpStatus;
    this.fromUpstream = options.fromUpstream ?? false;
  }

  /** A copy of this error with some options changed; every other field is kept. */
  with(changes: SpillwayErrorOptions): SpillwayError {
    return new SpillwayError(this.code, this.message, {
      param: this.param,
      reason: this.reason,
      retryable: this.retryable,
      retryAfterMs: this.retryAfterMs,
      httpStatus: this.httpStatus,
      fromUpstream: this.fromUpstream,
      cause: this.cause,
      ...changes,
    });
  }

  /**
   * Converts any thrown value into a SpillwayError: SpillwayErrors pass
   * through, aborts become `Canceled` (or the abort reason when that is a
   * SpillwayError), everything else becomes `Internal` without leaking details.
   */
  static from(reason: unknown): SpillwayError {
    if (reason instanceof SpillwayError) return reason;
    if (reason instanceof Error && (reason.name === "AbortError" || reason.name === "TimeoutError")) {
      const inner = (reason as Error & { cause?: unknown }).cause;
      if (inner instanceof SpillwayError) return inner;
      return reason.name === "TimeoutError"
        ? new SpillwayError(Code.DeadlineExceeded, "the request timed out", { cause: reason })
        : new SpillwayError(Code.Canceled, "the request was cancelled", { cause: reason });
    }
    return new SpillwayError(Code.Internal, "internal error", { cause: reason });
  }

  /** The in-band error chunk payload for this error. */
  toChunkError(): StreamError {
    return {
      type: codeName(this.code),
      code: this.reason ?? "",
      message: this.message,
      param: this.param ?? "",
      grpcCode: this.code,
      retryable: this.retryable,
    };
  }

  /** Rebuilds a SpillwayError from an in-band error chunk payload. */
  static fromChunkError(e: StreamError): SpillwayError {
    const code = e.grpcCode >= 1 && e.grpcCode <= 16 ? (e.grpcCode as Code) : Code.Unknown;
    return new SpillwayError(code, e.message, {
      reason: e.code || undefined,
      param: e.param || undefined,
      retryable: e.retryable,
    });
  }
}

/** `invalid_argument` for `Code.InvalidArgument`: the code's name in snake case. */
export function codeName(code: Code): string {
  return (Code[code] ?? "Unknown").replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase();
}

/** Shorthand for an `InvalidArgument` error naming the field at fault. */
export function invalidArgument(message: string, param?: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, message, { param, reason: "invalid_value" });
}

/**
 * Builds an error without capturing a stack trace, for expected outcomes
 * nobody debugs by their stack (a client's cancel, a sentinel compared by
 * identity): capturing one costs a few µs, and formatting it — Node's
 * streams read `.stack` when destroyed with an error, and with source maps
 * on (tsx, `--enable-source-maps`) that maps every frame — cost ~0.6 ms of
 * CPU per voice turn whose session closes mid-answer (issue 17, wave 9).
 */
export function stackless<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
