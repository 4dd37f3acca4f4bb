import { Code, openAiErrorType } from "./code.js";
import type { StreamError } from "../gen/spillway/v1/chunk.js";

/** Options of a {@link SpillwayError} beyond its code and message. */
export interface SpillwayErrorOptions {
  /** The request field at fault, e.g. `messages[0].role`. */
  param?: string | undefined;
  /** OpenAI-style machine code, e.g. `model_not_found`. */
  openAiCode?: string | undefined;
  /** OpenAI-style error type; defaults to one derived from the code. */
  type?: string | undefined;
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
  readonly openAiCode: string | undefined;
  readonly type: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly httpStatus: number | undefined;
  readonly fromUpstream: boolean;

  constructor(code: Code, message: string, options: SpillwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.param = options.param;
    this.openAiCode = options.openAiCode;
    this.type = options.type ?? openAiErrorType(code);
    this.retryable =
      options.retryable ??
      (code === Code.Unavailable || code === Code.ResourceExhausted || code === Code.DeadlineExceeded);
    this.retryAfterMs = options.retryAfterMs;
    this.httpStatus = options.httpStatus;
    this.fromUpstream = options.fromUpstream ?? false;
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
      type: this.type,
      code: this.openAiCode ?? "",
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
      type: e.type || undefined,
      openAiCode: e.code || undefined,
      param: e.param || undefined,
      retryable: e.retryable,
    });
  }
}

/** Shorthand for an `InvalidArgument` error naming the field at fault. */
export function invalidArgument(message: string, param?: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, message, { param, openAiCode: "invalid_value" });
}
