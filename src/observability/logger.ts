import { pino, type Logger } from "pino";

/**
 * The process logger: structured JSON lines on stdout (pino). `LOG_LEVEL`
 * sets the level (default `info`; `silent` in tests).
 */
export const logger: Logger = pino({
  level: process.env["LOG_LEVEL"] ?? (process.env["NODE_TEST_CONTEXT"] ? "silent" : "info"),
  base: { service: "spillway" },
  redact: { paths: ["req.headers.authorization", "*.apiKey", "apiKey"], censor: "[redacted]" },
});

export type { Logger };
