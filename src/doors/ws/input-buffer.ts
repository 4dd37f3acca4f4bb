import { base64DecodedLength, decodeBase64StrictInto } from "./audio/base64.js";

/** Smallest storage a buffer grows to (bytes): about 1.4 s of pcm16 at 24 kHz. */
const MIN_CAPACITY = 64 * 1024;

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
 * {@link peek}/{@link take} return views instead of concatenating. The
 * store is append-only: bytes it has held are never written over (dropping
 * moves the start, clearing moves the start to the end, growing copies into
 * a new store), so every view it handed out stays valid for as long as its
 * holder (a transcription's queue, a VAD's frames) keeps it.
 */
export class InputAudioBuffer {
  private store: Buffer = Buffer.alloc(0);
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
   */
  constructor(
    private rate: number,
    private bytesPerSample = 2,
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

  /** All buffered audio as one piece: a view that later changes to the buffer leave as it is. */
  peek(): Buffer {
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
    const converted = this.samples > 0 ? convert(this.peek()) : new Uint8Array(0);
    this.rate = rate;
    this.bytesPerSample = bytesPerSample;
    // A new store: pcm16 samples start 2-byte aligned again.
    this.store = Buffer.alloc(0);
    this.start = this.end = this.samples = this.total = 0;
    this.baseMs = end;
    if (converted.length === 0) return;
    const n = converted.length / bytesPerSample;
    // The converted audio ends where the old audio ended.
    this.baseMs = end - Math.floor((n * 1000) / rate);
    this.append(converted);
  }

  private isStaged(bytes: Uint8Array): boolean {
    return bytes.buffer === this.store.buffer && bytes.byteOffset === this.store.byteOffset + this.end && this.end + bytes.length <= this.store.length;
  }

  /** Room for `n` more bytes after `end`: when short, a new store with the buffered bytes copied in (the old one stays as its views hold it). */
  private reserve(n: number): void {
    if (this.store.length - this.end >= n) return;
    const live = this.end - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(MIN_CAPACITY, 2 * (live + n)));
    this.store.copy(next, 0, this.start, this.end);
    this.store = next;
    this.start = 0;
    this.end = live;
  }

  private dropSamples(n: number): void {
    this.samples -= n;
    this.start += n * this.bytesPerSample;
  }
}
