/**
 * Log entries packed into one byte buffer: per entry a 17-byte header —
 * chunk length (u32), logging time (f64 epoch ms), seq (u32), flags (u8,
 * 1 = last) — then the chunk's bytes. The embedded log keeps each stream
 * this way (one object per stream for the GC, not one per chunk) and the
 * Redis log writes one batch per stream entry this way (one `XADD` per
 * batch, not per chunk).
 */
import type { LogEntry } from "./stream-log.js";

/** Bytes before each packed entry. */
export const ENTRY_HEADER = 17;

/** Bytes `entries` take packed. */
export function packedSize(entries: readonly LogEntry[]): number {
  let n = 0;
  for (const e of entries) n += ENTRY_HEADER + e.chunk.length;
  return n;
}

/** Writes `e` at byte `at` of `data` (which must have room: {@link ENTRY_HEADER} + its chunk); returns where the next entry goes. */
export function packAt(data: Uint8Array, view: DataView, at: number, e: LogEntry): number {
  view.setUint32(at, e.chunk.length);
  view.setFloat64(at + 4, e.at);
  view.setUint32(at + 12, e.seq);
  data[at + 16] = e.last ? 1 : 0;
  data.set(e.chunk, at + ENTRY_HEADER);
  return at + ENTRY_HEADER + e.chunk.length;
}

/** `entries` packed into a new buffer. */
export function pack(entries: readonly LogEntry[]): Uint8Array {
  const data = new Uint8Array(packedSize(entries));
  const view = new DataView(data.buffer);
  let at = 0;
  for (const e of entries) at = packAt(data, view, at, e);
  return data;
}

/**
 * The entry packed at byte `at` of `data` (its chunk a view of `data`, not a
 * copy) and where the next one starts. Throws a RangeError on a truncated buffer.
 */
export function unpackAt(data: Uint8Array, view: DataView, at: number): { entry: LogEntry; next: number } {
  const len = view.getUint32(at);
  const start = at + ENTRY_HEADER;
  if (start + len > data.length) throw new RangeError(`packed log entry at byte ${at} runs past the end (${data.length} bytes)`);
  const last = data[at + 16] === 1;
  const entry: LogEntry = { seq: view.getUint32(at + 12), at: view.getFloat64(at + 4), chunk: data.subarray(start, start + len), ...(last ? { last } : {}) };
  return { entry, next: start + len };
}

/** Every entry of a packed buffer. */
export function unpack(data: Uint8Array): LogEntry[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: LogEntry[] = [];
  for (let at = 0; at < data.length; ) {
    const r = unpackAt(data, view, at);
    out.push(r.entry);
    at = r.next;
  }
  return out;
}
