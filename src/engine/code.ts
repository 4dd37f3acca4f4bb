/**
 * The closed set of error codes every Spillway error is classified by: the
 * gRPC status codes, so that the gRPC door maps them one to one and the other
 * doors map them through one table each.
 */
export enum Code {
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** The OpenAI error `type` used for each code, when an error names none itself. */
export function openAiErrorType(code: Code): string {
  switch (code) {
    case Code.InvalidArgument:
    case Code.NotFound:
    case Code.OutOfRange:
    case Code.FailedPrecondition:
    case Code.AlreadyExists:
      return "invalid_request_error";
    case Code.Unauthenticated:
      return "authentication_error";
    case Code.PermissionDenied:
      return "permission_error";
    case Code.ResourceExhausted:
      return "rate_limit_error";
    case Code.DeadlineExceeded:
      return "timeout_error";
    case Code.Canceled:
      return "cancelled";
    case Code.Unimplemented:
      return "not_implemented_error";
    default:
      return "server_error";
  }
}
