import { base64DecodedLength, decodeBase64StrictInto } from "./audio/base64.js";
import { inputStorePool, type StorePool } from "./store-pool.js";

/**
 * The input audio buffer of a realtime session: the audio the client
 * appended and has not committed yet, kept as it came on the wire (pcm16 at
 * 24 kHz, or G.711 at 8 kHz, so telephony audio can reach a recognizer that
 * takes G.711 byte for byte), with its position in the session's audio
 * timeline, so VAD positions (ms since the session's first audio) map to
 * samples.
 *
 * The bytes live in one growable store, and base64 appends decode straight
 * into it ({@link stageBase64}), so an append allocates nothing and
 * {@link peek}/{@link take}/{@link borrow} return views instead of
 * concatenating. The store is append-only: bytes it has held are never
 * written over while the buffer lives (dropping moves the start, clearing
 * moves the start to the end, growing copies into a new store).
 *
 * Stores come from a per-process pool (store-pool.ts: their pages are
 * already touched, so the decode does not fault them in). A store goes
 * back to the pool when it is outgrown or the buffer is
 * {@link release}d — but only if it was never lent: a {@link peek} or
 * {@link take} view may be kept by its holder for as long as it likes, so
 * the store it points into is left to the collector, never reused. Views
 * from {@link stageBase64} and {@link borrow} are not lent: they stay
 * valid until the store may move — the next `stageBase64`, `append` of
 * other bytes, `reformat` or `release` (appending the staged view itself,
 * dropping and clearing do not move it) — so the session reads them
 * synchronously, and whoever keeps audio longer (a transcription's queue, a
 * VAD waiting for its model) copies it.
 */
export class InputAudioBuffer {
  private store: Buffer = Buffer.alloc(0);
  /** A peek or take view of `store` was handed out: the store never goes back to the pool. */
  private lent = false;
  /** Byte offset of the first buffered byte in `store`. */
  private start = 0;
  /** Byte offset after the last buffered byte; nothing at or after it has been handed out. */
  private end = 0;
  /** Buffered samples. */
  private samples = 0;
  /** Samples appended since `baseMs` (the last change of format). */
  private total = 0;
  /** Session position (ms) where `total` counts from. */
  private baseMs = 0;

  /**
   * @param sampleRate - samples per second of the wire format
   * @param bytesPerSample - 2 for pcm16, 1 for G.711
   * @param pool - where stores come from and go back to (default: the process's)
   */
  constructor(
    private rate: number,
    private bytesPerSample = 2,
    private readonly pool: StorePool = inputStorePool,
  ) {}

  /** Samples per second of the buffered audio. */
  get sampleRate(): number {
    return this.rate;
  }

  /** Length of the buffered audio (ms). */
  get durationMs(): number {
    return (this.samples * 1000) / this.rate;
  }

  /** Audio appended over the whole session (ms). */
  get positionMs(): number {
    return this.baseMs + Math.floor((this.total * 1000) / this.rate);
  }

  /** Buffered samples. */
  get length(): number {
    return this.samples;
  }

  /**
   * Decodes base64 `s` (as `decodeBase64Strict`) into the store just past
   * the buffered audio, without adding it: the returned view is added by
   * passing it to {@link append} (no copy) before anything else changes the
   * buffer; undefined when `s` is not base64.
   */
  stageBase64(s: string): Buffer | undefined {
    // Not lent: the caller appends the view, and copies what it keeps (see the class comment).
    const expected = base64DecodedLength(s);
    if (expected < 0) return undefined;
    this.reserve(expected);
    const n = decodeBase64StrictInto(s, this.store, this.end);
    return n < 0 ? undefined : this.store.subarray(this.end, this.end + n);
  }

  /** Adds audio (whole samples of the wire format) at the end: a view from {@link stageBase64} without a copy, other bytes copied in. */
  append(bytes: Uint8Array): void {
    const len = bytes.length;
    if (len === 0) return;
    if (!this.isStaged(bytes)) {
      this.reserve(len);
      this.store.set(bytes, this.end);
    }
    this.end += len;
    const n = len / this.bytesPerSample;
    this.samples += n;
    this.total += n;
  }

  /** Drops audio before `ms` of the session timeline (keeps everything after it). */
  dropBefore(ms: number): void {
    const startSample = this.total - this.samples;
    const cut = Math.min(this.samples, Math.max(0, Math.floor(((ms - this.baseMs) * this.rate) / 1000) - startSample));
    if (cut > 0) this.dropSamples(cut);
  }

  /** Keeps only the last `ms` of audio. */
  keepLast(ms: number): void {
    const keep = Math.floor((ms * this.rate) / 1000);
    if (this.samples > keep) this.dropSamples(this.samples - keep);
  }

  /** All buffered audio as one piece: a view that later changes to the buffer leave as it is (its store is never reused). */
  peek(): Buffer {
    this.lent = true;
    return this.store.subarray(this.start, this.end);
  }

  /**
   * All buffered audio as one piece, for a caller that copies what it keeps
   * (a transcription's `push`): not lent, so valid only until the store may
   * move (see the class comment), after which it may be reused.
   */
  borrow(): Buffer {
    return this.store.subarray(this.start, this.end);
  }

  /** Returns all buffered audio as one piece (as {@link peek}) and empties the buffer. */
  take(): Buffer {
    const out = this.peek();
    this.clear();
    return out;
  }

  /** Empties the buffer. */
  clear(): void {
    this.start = this.end;
    this.samples = 0;
  }

  /**
   * The wire format changed: the buffered audio becomes `convert(buffered)`
   * in the new format, and the timeline goes on where it was.
   */
  reformat(rate: number, bytesPerSample: number, convert: (bytes: Buffer) => Uint8Array): void {
    const end = this.positionMs;
    const old = this.store;
    // `convert` may keep the view it is given: then the old store counts as lent.
    const oldLent = this.lent || this.samples > 0;
    const converted = this.samples > 0 ? convert(old.subarray(this.start, this.end)) : new Uint8Array(0);
    this.rate = rate;
    this.bytesPerSample = bytesPerSample;
    // A new store: pcm16 samples start 2-byte aligned again.
    this.store = Buffer.alloc(0);
    this.lent = false;
    this.start = this.end = this.samples = this.total = 0;
    this.baseMs = end;
    if (converted.length > 0) {
      const n = converted.length / bytesPerSample;
      // The converted audio ends where the old audio ended.
      this.baseMs = end - Math.floor((n * 1000) / rate);
      this.append(converted);
    }
    this.retire(old, oldLent);
  }

  /**
   * The buffer's owner is done with it (the session closed): its store goes
   * back to the pool unless it was lent. Views it gave out by
   * {@link stageBase64} or {@link borrow} must no longer be used. The
   * buffer stays usable (empty, a new store on the next append).
   */
  release(): void {
    this.retire(this.store, this.lent);
    this.store = Buffer.alloc(0);
    this.lent = false;
    this.start = this.end = this.samples = 0;
  }

  private isStaged(bytes: Uint8Array): boolean {
    return bytes.buffer === this.store.buffer && bytes.byteOffset === this.store.byteOffset + this.end && this.end + bytes.length <= this.store.length;
  }

  /**
   * Room for `n` more bytes after `end`: when short, a new store from the
   * pool with the buffered bytes copied in; the old one goes back to the
   * pool, or, when lent, stays as its views hold it.
   */
  private reserve(n: number): void {
    if (this.store.length - this.end >= n) return;
    const live = this.end - this.start;
    const next = this.pool.acquire(2 * (live + n));
    this.store.copy(next, 0, this.start, this.end);
    this.retire(this.store, this.lent);
    this.store = next;
    this.lent = false;
    this.start = 0;
    this.end = live;
  }

  private retire(store: Buffer, lent: boolean): void {
    if (!lent && store.length > 0) this.pool.release(store);
  }

  private dropSamples(n: number): void {
    this.samples -= n;
    this.start += n * this.bytesPerSample;
  }
}
