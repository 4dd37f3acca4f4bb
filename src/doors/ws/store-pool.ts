/**
 * Stores for the realtime input audio buffers (input-buffer.ts), reused
 * across sessions and turns of this process.
 *
 * Why: a store is 64 KiB or more, so each fresh one is memory the process
 * has not touched (glibc hands sizes like these out of fresh or trimmed
 * pages, and releases them again when the collector frees the store), and
 * the base64 decode of every append then paid a page fault per 4 KiB of
 * audio (`stageBase64` → simdutf → `clear_page` in the wave 11 profile). A
 * pooled store's pages are already there.
 *
 * The pool only takes a store back when its owner says no view of it is
 * held (the input buffer returns only stores it never lent out: see
 * `InputAudioBuffer`); a store handed out again is written over. Sizes are
 * powers of two from {@link MIN_STORE_BYTES}; stores larger than
 * `maxStoreBytes`, or that would take the pool over `maxBytes`, are left to
 * the collector.
 */

/** Smallest store (bytes): about 1.4 s of pcm16 at 24 kHz. */
export const MIN_STORE_BYTES = 64 * 1024;

/** The size class of a store for `n` bytes: the power of two at or above it, at least {@link MIN_STORE_BYTES}. */
export function storeSizeFor(n: number): number {
  let size = MIN_STORE_BYTES;
  while (size < n) size *= 2;
  return size;
}

/** A pool of reusable stores (see the file comment). */
export class StorePool {
  private readonly free = new Map<number, Buffer[]>();
  /** The stores in `free`: one released twice is not pooled twice (it would go to two owners). */
  private readonly pooled = new WeakSet<ArrayBuffer>();
  private heldBytes = 0;
  /** Stores handed out from the pool instead of allocated (for tests and benchmarks). */
  reused = 0;

  /**
   * @param maxBytes - most bytes the pool keeps in all (default 8 MiB: 20 callers' stores of a few hundred KiB)
   * @param maxStoreBytes - largest store it keeps (default 1 MiB; larger ones are rare: a long turn)
   */
  constructor(
    readonly maxBytes = 8 * 1024 * 1024,
    readonly maxStoreBytes = 1024 * 1024,
  ) {}

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** A store of at least `n` bytes (a size class, {@link storeSizeFor}); its contents are whatever it held. */
  acquire(n: number): Buffer {
    const size = storeSizeFor(n);
    const store = this.free.get(size)?.pop();
    if (store === undefined) return Buffer.allocUnsafeSlow(size);
    this.pooled.delete(store.buffer as ArrayBuffer);
    this.heldBytes -= size;
    this.reused++;
    return store;
  }

  /**
   * Takes `store` back for reuse. The caller must hold no view of it and
   * must have given none out that is still held. Only whole stores of a
   * size class are kept (others, and any over the limits, are dropped).
   */
  release(store: Buffer): void {
    const size = store.length;
    const whole = store.byteOffset === 0 && store.buffer.byteLength === size && !(store.buffer instanceof SharedArrayBuffer);
    if (!whole || size !== storeSizeFor(size) || size > this.maxStoreBytes || this.heldBytes + size > this.maxBytes) return;
    const ab = store.buffer;
    if (this.pooled.has(ab)) return;
    this.pooled.add(ab);
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(store);
    this.heldBytes += size;
  }
}

/** The process's pool for the realtime input buffers. */
export const inputStorePool = new StorePool();
