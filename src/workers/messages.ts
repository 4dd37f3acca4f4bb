/** The IPC messages between the primary process and its gateway workers. */
import type { ReloadOutcome } from "../config/reload.js";

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

/** The primary tells a worker to reload the config (SIGHUP, or an admin request). */
export interface ReloadMessage {
  readonly type: "spillway:reload";
}

/** A worker asks the primary to reload every worker (`POST /admin/reload`). */
export interface ReloadRequestMessage {
  readonly type: "spillway:reload-request";
  readonly id: number;
}

/** The primary's answer to a {@link ReloadRequestMessage}: its own check of the new config. */
export interface ReloadReplyMessage {
  readonly type: "spillway:reload-reply";
  readonly id: number;
  readonly outcome: ReloadOutcome;
}

/** Whether `m` is an IPC message of `type`. */
export function isMessageOf<T extends { type: string }>(m: unknown, type: T["type"]): m is T {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;
}
