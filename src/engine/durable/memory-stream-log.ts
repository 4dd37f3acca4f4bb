import { Code } from "../code.js";
import { SpillwayError } from "../errors.js";
import { TERMINAL_STATUSES, type LogEntry, type StreamLog, type StreamRecord, type StreamStatus } from "./stream-log.js";

/** Bounds of a {@link MemoryStreamLog}. */
export interface MemoryStreamLogOptions {
  /** All logs together, in chunk bytes. Default 256 MiB. */
  readonly maxBytes?: number;
  /** Records kept at most. Default 10 000. */
  readonly maxCount?: number;
  /** The clock (epoch ms); `Date.now` by default. */
  readonly now?: () => number;
}

interface Slot {
  readonly record: StreamRecord;
  readonly entries: LogEntry[];
  readonly ttlMs: number;
  bytes: number;
  /** Epoch ms the stream ended (terminal status), for retention. */
  endedAt: number | undefined;
  /** Followers waiting for the next entry or the end. */
  wakers: Array<() => void>;
  deleted: boolean;
}

/**
 * The embedded stream log: in this process's memory, bounded by bytes and
 * count. When full, the oldest finished logs are evicted first; running ones
 * are never evicted (a new stream is refused with 503 instead). A finished
 * log is dropped `ttlMs` after it ended. It serves the workers of one
 * gateway through the primary (see `src/workers/`) or, with one process,
 * directly.
 */
export class MemoryStreamLog implements StreamLog {
  readonly kind = "embedded";
  private readonly slots = new Map<string, Slot>();
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly maxCount: number;
  private readonly now: () => number;
  private cancelHandler: ((id: string) => void) | undefined;

  constructor(options: MemoryStreamLogOptions = {}) {
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.maxCount = options.maxCount ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Bytes of chunks held (for tests and metrics). */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Records held. */
  get size(): number {
    return this.slots.size;
  }

  create(record: StreamRecord, ttlMs: number): Promise<void> {
    this.expire();
    if (this.slots.size >= this.maxCount || this.bytes >= this.maxBytes) this.evict();
    if (this.slots.size >= this.maxCount || this.bytes >= this.maxBytes) {
      return Promise.reject(
        new SpillwayError(Code.Unavailable, "The stream log is full of running streams; retry shortly.", { httpStatus: 503, reason: "stream_log_full", retryAfterMs: 1000 }),
      );
    }
    this.slots.set(record.id, { record: { ...record }, entries: [], ttlMs, bytes: 0, endedAt: undefined, wakers: [], deleted: false });
    return Promise.resolve();
  }

  append(id: string, entries: readonly LogEntry[]): Promise<void> {
    this.appendNow(id, entries);
    return Promise.resolve();
  }

  appendNow(id: string, entries: readonly LogEntry[]): void {
    const slot = this.slots.get(id);
    if (!slot) return;
    for (const e of entries) {
      slot.entries.push(e);
      slot.bytes += e.chunk.length;
      this.bytes += e.chunk.length;
    }
    this.wake(slot);
  }

  setStatus(id: string, status: StreamStatus): Promise<void> {
    const slot = this.slots.get(id);
    if (slot) {
      slot.record.status = status;
      if (TERMINAL_STATUSES.has(status)) slot.endedAt ??= this.now();
      this.wake(slot);
    }
    return Promise.resolve();
  }

  get(id: string): Promise<StreamRecord | undefined> {
    const slot = this.live(id);
    return Promise.resolve(slot ? { ...slot.record } : undefined);
  }

  async *read(id: string, afterSeq: number, signal: AbortSignal, follow = true): AsyncIterable<LogEntry> {
    const slot = this.live(id);
    if (!slot) return;
    let i = 0;
    while (i < slot.entries.length && slot.entries[i]!.seq <= afterSeq) i++;
    for (;;) {
      while (i < slot.entries.length) {
        if (signal.aborted || slot.deleted) return;
        const e = slot.entries[i++]!;
        // Entries logged after the read began are skipped here too.
        if (e.seq > afterSeq) yield e;
      }
      if (!follow || slot.deleted || signal.aborted || TERMINAL_STATUSES.has(slot.record.status)) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        slot.wakers.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  delete(id: string): Promise<boolean> {
    const slot = this.live(id);
    if (!slot) return Promise.resolve(false);
    this.drop(id, slot);
    return Promise.resolve(true);
  }

  /** The seq of the last entry of `id` (-1 when none), and whether it ended; undefined when unknown. */
  tail(id: string): { lastSeq: number; ended: boolean } | undefined {
    const slot = this.live(id);
    if (!slot) return undefined;
    return { lastSeq: slot.entries.at(-1)?.seq ?? -1, ended: TERMINAL_STATUSES.has(slot.record.status) };
  }

  requestCancel(id: string): Promise<void> {
    this.cancelHandler?.(id);
    return Promise.resolve();
  }

  onCancel(handler: (id: string) => void): void {
    this.cancelHandler = handler;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private live(id: string): Slot | undefined {
    const slot = this.slots.get(id);
    if (slot && slot.endedAt !== undefined && slot.endedAt + slot.ttlMs <= this.now()) {
      this.drop(id, slot);
      return undefined;
    }
    return slot;
  }

  private drop(id: string, slot: Slot): void {
    slot.deleted = true;
    this.slots.delete(id);
    this.bytes -= slot.bytes;
    this.wake(slot);
  }

  private wake(slot: Slot): void {
    if (slot.wakers.length === 0) return;
    const wakers = slot.wakers;
    slot.wakers = [];
    for (const w of wakers) w();
  }

  /** Drops finished logs past their retention. */
  private expire(): void {
    const now = this.now();
    for (const [id, slot] of this.slots) if (slot.endedAt !== undefined && slot.endedAt + slot.ttlMs <= now) this.drop(id, slot);
  }

  /** Drops the oldest finished logs until under both bounds (Map order is insertion order: oldest first). */
  private evict(): void {
    for (const [id, slot] of this.slots) {
      if (this.slots.size < this.maxCount && this.bytes < this.maxBytes) return;
      if (slot.endedAt !== undefined) this.drop(id, slot);
    }
  }
}
