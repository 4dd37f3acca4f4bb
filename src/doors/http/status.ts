import { STATUS_CODES } from "node:http";
import { Code } from "../../engine/code.js";
import type { SpillwayError } from "../../engine/errors.js";

/** The HTTP status for each code: the one table the HTTP door maps errors with. */
const STATUS_FOR_CODE: Readonly<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 502,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status for an error: its own `httpStatus` when set, else the table's. */
export function httpStatusOf(err: SpillwayError): number {
  return err.httpStatus ?? STATUS_FOR_CODE[err.code];
}

const statusLines = new Map<number, string>();

/** `"404 Not Found"`, as uWS's `writeStatus` wants it (cached). */
export function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? (status === 499 ? "Client Closed Request" : "Unknown")}`;
    statusLines.set(status, line);
  }
  return line;
}
