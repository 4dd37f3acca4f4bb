import { Code } from "../code.js";
import { SpillwayError } from "../errors.js";
import { ENTRY_HEADER, packAt, unpackAt } from "./packed-entries.js";
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

/** First capacity of a log's packed buffer (it doubles as it fills, and is trimmed when the stream ends). */
const FIRST_CAPACITY = 2048;

/**
 * One stored stream. Its entries are packed into one growing byte buffer
 * (see `packed-entries.ts`) rather than kept as one
 * `Uint8Array` per chunk: thousands of retained logs are then a few
 * thousand objects for the GC to mark, not a few hundred thousand.
 */
interface Slot {
  readonly record: StreamRecord;
  readonly ttlMs: number;
  data: Uint8Array;
  view: DataView;
  /** Bytes of `data` in use (headers included): what the slot counts against `maxBytes`. */
  bytes: number;
  /** The seq of the last entry, -1 when none. */
  lastSeq: number;
  /** Epoch ms the stream ended (terminal status), for retention. */
  endedAt: number | undefined;
  /** Followers waiting for the next entry or the end. */
  wakers: Array<() => void>;
  deleted: boolean;
}

function packInto(slot: Slot, e: LogEntry): number {
  const need = ENTRY_HEADER + e.chunk.length;
  if (slot.bytes + need > slot.data.length) {
    let cap = Math.max(slot.data.length * 2, FIRST_CAPACITY);
    while (cap < slot.bytes + need) cap *= 2;
    const data = new Uint8Array(cap);
    data.set(slot.data.subarray(0, slot.bytes));
    slot.data = data;
    slot.view = new DataView(data.buffer);
  }
  slot.bytes = packAt(slot.data, slot.view, slot.bytes, e);
  slot.lastSeq = e.seq;
  return need;
}

/**
 * The embedded stream log: in this process's memory, bounded by bytes and
 * count. When full, the logs that finished first are evicted first; running
 * ones are never evicted (a new stream is refused with 503 instead). A
 * finished log is dropped `ttlMs` after it ended. It serves the workers of
 * one gateway through the primary (see `src/workers/`) or, with one process,
 * directly. Every operation is O(1) in the number of logs held, except
 * eviction and expiry, which touch only the logs they drop; a read is O(its
 * log's length).
 */
export class MemoryStreamLog implements StreamLog {
  readonly kind = "embedded";
  private readonly slots = new Map<string, Slot>();
  /** Finished slots in the order they ended (Map order is insertion order): expiry and eviction take from the front. */
  private readonly finished = new Map<string, Slot>();
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

  /** Bytes held (packed chunks and their per-entry headers; for tests and metrics). */
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
    const data = new Uint8Array(0);
    this.slots.set(record.id, { record: { ...record }, ttlMs, data, view: new DataView(data.buffer), bytes: 0, lastSeq: -1, endedAt: undefined, wakers: [], deleted: false });
    return Promise.resolve();
  }

  append(id: string, entries: readonly LogEntry[]): Promise<void> {
    this.appendNow(id, entries);
    return Promise.resolve();
  }

  appendNow(id: string, entries: readonly LogEntry[]): void {
    const slot = this.slots.get(id);
    if (!slot) return;
    for (const e of entries) this.bytes += packInto(slot, e);
    this.wake(slot);
  }

  setStatus(id: string, status: StreamStatus, request?: string): Promise<void> {
    const slot = this.slots.get(id);
    if (slot) {
      slot.record.status = status;
      if (request !== undefined) slot.record.request = request;
      if (TERMINAL_STATUSES.has(status) && slot.endedAt === undefined) {
        slot.endedAt = this.now();
        this.finished.set(id, slot);
        // Done growing: keep only the bytes in use (readers holding views keep the old buffer until they let go).
        if (slot.data.length > slot.bytes) {
          slot.data = slot.data.slice(0, slot.bytes);
          slot.view = new DataView(slot.data.buffer);
        }
      }
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
    // Only the bytes logged so far are read before waiting: entries logged meanwhile come on the next pass.
    let at = 0;
    for (;;) {
      while (at < slot.bytes) {
        if (signal.aborted || slot.deleted) return;
        const { entry, next } = unpackAt(slot.data, slot.view, at);
        at = next;
        if (entry.seq > afterSeq) yield entry;
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
    return { lastSeq: slot.lastSeq, ended: TERMINAL_STATUSES.has(slot.record.status) };
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
    this.finished.delete(id);
    this.bytes -= slot.bytes;
    this.wake(slot);
  }

  private wake(slot: Slot): void {
    if (slot.wakers.length === 0) return;
    const wakers = slot.wakers;
    slot.wakers = [];
    for (const w of wakers) w();
  }

  /**
   * Drops finished logs past their retention, from the one that ended first
   * until one that has not expired. With one retention time for all (as
   * {@link DurableStreams} uses) that is every expired log; a log with a
   * shorter one may wait behind a longer one, but no read sees it expired.
   */
  private expire(): void {
    const now = this.now();
    for (const [id, slot] of this.finished) {
      if (slot.endedAt! + slot.ttlMs > now) return;
      this.drop(id, slot);
    }
  }

  /** Drops the logs that finished first until under both bounds. */
  private evict(): void {
    for (const [id, slot] of this.finished) {
      if (this.slots.size < this.maxCount && this.bytes < this.maxBytes) return;
      this.drop(id, slot);
    }
  }
}
