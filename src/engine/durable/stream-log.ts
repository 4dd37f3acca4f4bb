/**
 * The stream log: what a stored stream leaves behind so that any door, on
 * any worker or instance, can replay it and follow it live. Two backends
 * implement it: {@link MemoryStreamLog} (embedded, one process) and
 * {@link RedisStreamLog} (Redis Streams, shared by instances).
 */

/** Lifecycle of a stored stream (OpenAI's Response statuses). */
export type StreamStatus = "queued" | "in_progress" | "completed" | "failed" | "cancelled" | "incomplete";

/** Statuses a stored stream never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<StreamStatus> = new Set(["completed", "failed", "cancelled", "incomplete"]);

/** The stored facts of one stream, besides its chunks. */
export interface StreamRecord {
  /** The engine's stream id. */
  readonly id: string;
  /** Who made it (`Principal` as `index:name`): no one else may read, resume, cancel or delete it. */
  readonly owner: string;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Runs detached from the connection that made it. */
  readonly background: boolean;
  /** The door's own record of the request (JSON text, opaque to the engine); replaced once when a queued stream starts. */
  request: string;
  status: StreamStatus;
}

/** One logged chunk. */
export interface LogEntry {
  /** The chunk's `seq`. */
  readonly seq: number;
  /** Epoch ms when the recorder logged it (replays render times from this, not from the clock). */
  readonly at: number;
  /** The `Chunk`, protobuf-encoded. */
  readonly chunk: Uint8Array;
  /** Set on the stream's terminal chunk (finish or error). */
  readonly last?: boolean;
}

/** A store of stream logs. Every method may reject with `Unavailable` when the backend is down. */
export interface StreamLog {
  /** `embedded` or `redis`. */
  readonly kind: string;
  /** Stores a new record; its log expires `ttlMs` after it ends (or after `ttlMs` + its longest life). */
  create(record: StreamRecord, ttlMs: number): Promise<void>;
  /** Appends entries (in seq order) and wakes followers. */
  append(id: string, entries: readonly LogEntry[]): Promise<void>;
  /** For an in-process log: {@link StreamLog.append} done synchronously (no promise per chunk on the hot path). */
  appendNow?(id: string, entries: readonly LogEntry[]): void;
  /**
   * Sets the status (and, with `request`, replaces the request record: a
   * queued stream learns its upstream when it starts); a terminal one ends
   * every follower once it has read the whole log.
   */
  setStatus(id: string, status: StreamStatus, request?: string): Promise<void>;
  /** The record, or undefined when unknown, deleted or expired. */
  get(id: string): Promise<StreamRecord | undefined>;
  /**
   * The entries after `afterSeq` (-1: all), then each new one as it is
   * appended, until the record is terminal and everything was read, the
   * record is deleted, or `signal` aborts. A stream whose writer is gone
   * (its process died) ends with a failure entry the log appends itself.
   * With `follow` false, only the entries logged so far.
   */
  read(id: string, afterSeq: number, signal: AbortSignal, follow?: boolean): AsyncIterable<LogEntry>;
  /** Deletes the record and its log; false when there was none. */
  delete(id: string): Promise<boolean>;
  /** Tells the writer of `id`, wherever it runs, to cancel (see {@link StreamLog.onCancel}). */
  requestCancel(id: string): Promise<void>;
  /** Registers the handler for cancel requests (the local recorder's). */
  onCancel(handler: (id: string) => void): void;
  /** Marks `id` as still being written by a live process (for backends shared across processes). */
  heartbeat?(ids: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
