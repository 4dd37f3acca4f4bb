import { pino, type DestinationStream, type Logger } from "pino";

/**
 * Creates a logger: structured JSON lines (pino) on stdout, written in
 * batches (at most 100 ms late), or on `destination` when given (tests). When stdout is a terminal the lines are
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
  // Lines are buffered and written together (8 KiB, or every 100 ms): one
  // write per request line was a syscall per request on the hot path. pino
  // flushes what is buffered when the process exits.
  const dest = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => dest.flush(), LOG_FLUSH_MS).unref();
  return pino(options, dest);
}

/** Log bytes buffered before a write. */
const LOG_BUFFER_BYTES = 8 * 1024;
/** Longest a buffered log line waits. */
const LOG_FLUSH_MS = 100;

/** The process logger, for start-up and shutdown messages. */
export const logger: Logger = createLogger();

export type { Logger };
