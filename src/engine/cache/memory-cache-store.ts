import type { CacheStore } from "./cache-store.js";

interface Entry {
  readonly value: Uint8Array;
  readonly expiresAt: number;
}

/**
 * The embedded cache store: an LRU over a `Map` (insertion order; a read
 * moves the entry to the end) bounded by the sum of its entries' bytes.
 * Storing past `maxBytes` evicts the least recently used entries first; an
 * entry larger than `maxBytes` is never stored. Expired entries are dropped
 * when read or when eviction reaches them. Per process: workers do not share it.
 */
export class MemoryCacheStore implements CacheStore {
  private readonly entries = new Map<string, Entry>();
  private size = 0;

  /** @param maxBytes the most bytes all entries may hold together. */
  constructor(private readonly maxBytes: number) {}

  /** Bytes held now (the sum of the entries' sizes). */
  get bytes(): number {
    return this.size;
  }

  /** Entries held now. */
  get count(): number {
    return this.entries.size;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    const e = this.entries.get(key);
    if (!e) return Promise.resolve(undefined);
    this.entries.delete(key);
    if (e.expiresAt <= Date.now()) {
      this.size -= e.value.byteLength;
      return Promise.resolve(undefined);
    }
    this.entries.set(key, e);
    return Promise.resolve(e.value);
  }

  set(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    this.delete(key);
    if (value.byteLength > this.maxBytes) return Promise.resolve(false);
    while (this.size + value.byteLength > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
    this.size += value.byteLength;
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    this.entries.clear();
    this.size = 0;
    return Promise.resolve();
  }

  private delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.size -= e.value.byteLength;
  }
}
