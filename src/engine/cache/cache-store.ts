/**
 * Where the response cache keeps its entries: opaque bytes under a key, with
 * a time to live. Implementations never throw for a failed read or write (a
 * store that fails is a miss, and the call goes to the provider).
 */
export interface CacheStore {
  /** The entry under `key`, or `undefined` (absent, expired, or the store failed). */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `value` for `ttlMs`; resolves false when the entry was dropped (too large, the store failed). */
  set(key: string, value: Uint8Array, ttlMs: number): Promise<boolean>;
  /** Releases connections and memory. */
  close(): Promise<void>;
}
