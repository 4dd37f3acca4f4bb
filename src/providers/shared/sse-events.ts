import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";

/** Largest SSE event an upstream may send before the stream is failed (bytes). */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

/** Parses an upstream event's JSON, failing the stream with a clear error (`DataLoss`, 502) if it is not JSON. */
export function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch (e) {
    throw new SpillwayError(Code.DataLoss, `${provider}: upstream sent malformed JSON in a stream event`, {
      httpStatus: 502,
      reason: "upstream_error",
      cause: e,
    });
  }
}
