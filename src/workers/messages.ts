/** The IPC messages between the primary process and its gateway workers. */

/** A worker's gateway is listening. */
export interface ReadyMessage {
  readonly type: "spillway:ready";
  readonly http: number;
  readonly grpc: number | undefined;
  readonly providers: readonly string[];
}

/** The primary asks a worker to drain and exit. */
export interface ShutdownMessage {
  readonly type: "spillway:shutdown";
}

/** Set by the primary on its workers: the HTTP port they all bind (`--port 0` resolved once). */
export const WORKER_HTTP_PORT_ENV = "SPILLWAY_WORKER_HTTP_PORT";

/** Whether `m` is a {@link ReadyMessage}. */
export function isReady(m: unknown): m is ReadyMessage {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === "spillway:ready";
}

/** Whether `m` is a {@link ShutdownMessage}. */
export function isShutdown(m: unknown): m is ShutdownMessage {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === "spillway:shutdown";
}
