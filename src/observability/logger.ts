import { pino, type DestinationStream, type Logger } from "pino";
import { logWriter } from "./log-writer.js";

/**
 * Creates a logger: structured JSON lines (pino) on stdout, written in
 * batches (at most 100 ms late; see {@link logWriter}), or on `destination` when given (tests). When stdout is a terminal the lines are
 * pretty-printed (pino-pretty). `LOG_LEVEL` sets the level (default `info`;
 * `silent` under the test runner). Authorization headers and API keys are
 * redacted wherever they appear.
 */
export function createLogger(destination?: DestinationStream): Logger {
  const options = {
    level: process.env["LOG_LEVEL"] ?? (process.env["NODE_TEST_CONTEXT"] && !destination ? "silent" : "info"),
    base: { service: "spillway" },
    redact: {
      paths: ["authorization", "headers.authorization", "req.headers.authorization", "apiKey", "*.apiKey", "key", "*.key"],
      censor: "[redacted]",
    },
  };
  if (destination) return pino(options, destination);
  if (process.stdout.isTTY) return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: true } } });
  // Lines are gathered and written together (64 KiB, or every 100 ms, and at
  // exit), one asynchronous write at a time (see log-writer.ts): one write
  // per request line was a syscall per request on the hot path.
  return pino(options, logWriter(1));
}

/** The process logger, for start-up and shutdown messages. */
export const logger: Logger = createLogger();

export type { Logger };
