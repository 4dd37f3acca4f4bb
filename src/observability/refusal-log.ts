import type { Logger } from "pino";

/** How often a refusal for overload gets its own `request finished` line (ms). */
export const REFUSAL_LOG_PERIOD_MS = 1000;

interface Window {
  /** performance.now() when the last line was written. */
  at: number;
  /** Refusals since then that got no line of their own. */
  suppressed: number;
}

const windows = new WeakMap<Logger, Window>();

/**
 * Sampling of the `request finished` line for refusals for overload
 * (reason `server_overloaded`), so that turning a flood away does not cost a
 * log line each: the first refusal in each {@link REFUSAL_LOG_PERIOD_MS} is
 * logged in full, with `refusedUnlogged` = how many refusals since the last
 * line had none; the others only count (`spillway_requests_total` counts
 * every one, with its status and outcome). Returns the number to put in the
 * line, or `undefined` when this refusal gets no line. Other requests are
 * not sampled: one line each.
 */
export function sampleRefusal(logger: Logger, now = performance.now()): number | undefined {
  let w = windows.get(logger);
  if (!w) {
    w = { at: -Infinity, suppressed: 0 };
    windows.set(logger, w);
  }
  if (now - w.at < REFUSAL_LOG_PERIOD_MS) {
    w.suppressed++;
    return undefined;
  }
  const n = w.suppressed;
  w.at = now;
  w.suppressed = 0;
  return n;
}
