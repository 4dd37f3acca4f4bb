import { Redis } from "ioredis";
import type { CacheStore } from "./cache-store.js";

/** Settings of a {@link RedisCacheStore}. */
export interface RedisCacheStoreOptions {
  readonly url: string;
  /** Keys are `<keyPrefix>:cache:<sha256>`. */
  readonly keyPrefix: string;
  /** A command slower than this fails (and the call is a miss). */
  readonly commandTimeoutMs: number;
  /** Entries larger than this are not stored. */
  readonly maxEntryBytes: number;
  /** Told about a failed command (logged by the gateway). */
  readonly onError?: ((e: unknown) => void) | undefined;
}

/**
 * The shared cache store: one Redis string per entry (`SET … PX ttl`), so
 * every worker and instance on the same Redis serves each other's entries.
 * Redis bounds the total by its own `maxmemory` policy (use an LRU one, e.g.
 * `allkeys-lru`); this store only refuses single entries over
 * `maxEntryBytes`. A failed or slow command is a miss, never an error.
 */
export class RedisCacheStore implements CacheStore {
  private readonly redis: Redis;

  constructor(private readonly opts: RedisCacheStoreOptions) {
    this.redis = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs,
      lazyConnect: false,
    });
    this.redis.on("error", () => undefined);
  }

  private key(key: string): string {
    return `${this.opts.keyPrefix}:cache:${key}`;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return (await this.redis.getBuffer(this.key(key))) ?? undefined;
    } catch (e) {
      this.opts.onError?.(e);
      return undefined;
    }
  }

  async set(key: string, value: Uint8Array, ttlMs: number): Promise<boolean> {
    if (value.byteLength > this.opts.maxEntryBytes) return false;
    try {
      await this.redis.set(this.key(key), Buffer.from(value.buffer, value.byteOffset, value.byteLength), "PX", Math.max(1, Math.round(ttlMs)));
      return true;
    } catch (e) {
      this.opts.onError?.(e);
      return false;
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
