import { Code } from "../code.js";
import { SpillwayError } from "../errors.js";
import type { GenerateRequest, SynthesizeRequest } from "../../gen/spillway/v1/request.js";
import type { EngineStream } from "../active-stream.js";
import type { ChunkPayload } from "../payload.js";
import type { ProviderContext } from "../provider.js";
import { cacheKeyOf } from "./cache-key.js";
import type { CacheStore } from "./cache-store.js";
import { decodeEntry, encodeEntry, type CachedStream } from "./entry-codec.js";
import { RecordingStream } from "./recording-stream.js";

/**
 * How one call uses the response cache (request header `x-spillway-cache`):
 * `use` serves a stored stream when there is one and stores a new one;
 * `refresh` always goes to the provider and stores (replaces) the result;
 * `bypass` neither reads nor stores.
 */
export type CacheMode = "use" | "refresh" | "bypass";

/** The cache modes, for validating a header. */
export const CACHE_MODES: readonly CacheMode[] = ["use", "refresh", "bypass"];

/**
 * A request's `x-spillway-cache` header or gRPC metadata (`use`, `refresh`, `bypass`; absent: the
 * engine's default, `use`); anything else is a 400 naming the header.
 */
export function cacheModeOf(value: string | undefined): CacheMode | undefined {
  if (!value) return undefined;
  const v = value.trim().toLowerCase();
  if ((CACHE_MODES as readonly string[]).includes(v)) return v as CacheMode;
  throw new SpillwayError(Code.InvalidArgument, `Invalid x-spillway-cache header '${value}': expected one of ${CACHE_MODES.join(", ")}.`, {
    param: "x-spillway-cache",
    reason: "invalid_value",
  });
}

/**
 * The response cache as the engine uses it (StreamEngineOptions.cache):
 * key a request, look a key up, replay an entry as a provider stream, and
 * record a live stream. Lookups and stores never throw: a failing store is
 * a miss.
 */
export interface EngineCache {
  keyOf(capability: "generate" | "synthesize", req: GenerateRequest | SynthesizeRequest, routeId: string): string;
  get(key: string): Promise<CachedStream | undefined>;
  /**
   * The stored payloads as a provider stream, in order; the context's labels
   * get the original's plus `cache: "hit"`, and the usage is marked as
   * cached (`cachedInputTokens` = `inputTokens`, the tokens of the original).
   */
  replay(entry: CachedStream, ctx: ProviderContext): AsyncIterable<ChunkPayload>;
  /** Labels the stream `cache: "miss"` and stores it under `key` if it completes. */
  record(key: string, stream: EngineStream): EngineStream;
}

/** Settings of {@link createEngineCache}. */
export interface EngineCacheOptions {
  readonly store: CacheStore;
  readonly ttlSeconds: number;
  /** The largest entry stored (bytes). */
  readonly maxEntryBytes: number;
  /** Told about every stored entry (metrics). */
  readonly onStored?: ((bytes: number) => void) | undefined;
}

/** The stored payloads as a provider stream (one resolved promise per payload), the usage marked as cached. */
function replayPayloads(payloads: readonly ChunkPayload[]): AsyncIterable<ChunkPayload> {
  let i = 0;
  const mark = (p: ChunkPayload): ChunkPayload =>
    p.$case === "usage" ? { $case: "usage", value: { ...p.value, cachedInputTokens: Math.max(p.value.cachedInputTokens, p.value.inputTokens) } } : p;
  const iterator: AsyncIterator<ChunkPayload> = {
    next: () => Promise.resolve(i < payloads.length ? { done: false, value: mark(payloads[i++]!) } : { done: true, value: undefined }),
    return: () => {
      i = payloads.length;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** Creates the response cache over a store (memory or Redis). */
export function createEngineCache(opts: EngineCacheOptions): EngineCache {
  const ttlMs = opts.ttlSeconds * 1000;
  return {
    keyOf: cacheKeyOf,
    async get(key) {
      const bytes = await opts.store.get(key);
      return bytes ? decodeEntry(bytes) : undefined;
    },
    replay(entry, ctx) {
      Object.assign(ctx.labels, entry.labels, { cache: "hit" });
      return replayPayloads(entry.payloads);
    },
    record(key, stream) {
      (stream.labels as Record<string, string>)["cache"] = "miss";
      const routeId = stream.route.id;
      const labels = { ...stream.labels };
      delete labels["cache"];
      return new RecordingStream(stream, opts.maxEntryBytes, (payloads) => {
        const bytes = encodeEntry({ routeId, labels, payloads });
        if (bytes.byteLength > opts.maxEntryBytes) return;
        void opts.store.set(key, bytes, ttlMs).then((stored) => {
          if (stored) opts.onStored?.(bytes.byteLength);
        });
      });
    },
  };
}

export type { CachedStream };
