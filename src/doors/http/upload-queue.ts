/**
 * How an {@link UploadQueue} slows its source: `pause` when more than
 * `highWater` bytes wait unread while a reader is reading, `resume` once
 * they are down to half of it (and at the end, a failure, or the reader
 * stopping, so that the rest of the body can still be read or dropped).
 */
export interface UploadFlow {
  readonly pause: () => void;
  readonly resume: () => void;
  /** Unread bytes above which the source is paused. */
  readonly highWater: number;
}

/** The default {@link UploadFlow.highWater}: 1 MiB. */
export const UPLOAD_HIGH_WATER = 1024 * 1024;

/**
 * The bytes of an uploaded part between the body parser (which pushes them
 * as uWS hands them over) and one reader (a recognizer, an upstream
 * request), as an async iterator. Unread bytes wait in memory; what bounds
 * them is the upload limit the parser enforces, and — with a {@link UploadFlow}
 * — the flow's high-water mark once a reader has begun: a reader slower
 * than the client pauses the client's upload instead of letting the backlog
 * grow. (Before the first read nothing is paused: a form whose file waits
 * for the fields after it must be read to its end.) {@link fail} makes the
 * reader throw at its next read, dropping what it had not read (a 413 stops
 * the recognizer at once, not after the backlog); a reader that stops early
 * (`return()`) makes later pushes no-ops, so nothing piles up.
 */
export class UploadQueue implements AsyncIterableIterator<Buffer> {
  /** Bytes pushed so far (read or not). */
  size = 0;
  /** Bytes pushed and not read yet. */
  queued = 0;
  private items: Buffer[] = [];
  private head = 0;
  private ended = false;
  private stopped = false;
  private reading = false;
  private paused = false;
  private error: Error | undefined;
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: unknown) => void } | undefined;

  constructor(private readonly flow?: UploadFlow) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this;
  }

  /** Adds a piece (ignored after the end, a failure, or once the reader stopped). */
  push(piece: Buffer): void {
    if (this.ended || this.stopped || this.error) return;
    this.size += piece.length;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ done: false, value: piece });
      return;
    }
    this.items.push(piece);
    this.queued += piece.length;
    if (this.reading && !this.paused && this.flow && this.queued > this.flow.highWater) {
      this.paused = true;
      this.flow.pause();
    }
  }

  private unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    this.flow!.resume();
  }

  /** The part ended: the reader gets what is queued, then the end. */
  end(): void {
    if (this.ended || this.error) return;
    this.ended = true;
    this.unpause();
    this.settle();
  }

  /** The upload failed: the reader's next read throws `err`; unread pieces are dropped. */
  fail(err: Error): void {
    if (this.ended || this.error) return;
    this.error = err;
    this.items = [];
    this.head = 0;
    this.queued = 0;
    this.unpause();
    this.settle();
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.error) return Promise.reject(this.error);
    this.reading = true;
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.items[this.head++] = EMPTY;
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      }
      this.queued -= value.length;
      if (this.paused && this.queued <= this.flow!.highWater / 2) this.unpause();
      return Promise.resolve({ done: false, value });
    }
    if (this.ended || this.stopped) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The reader stopped: queued and later pieces are dropped. */
  return(): Promise<IteratorResult<Buffer>> {
    this.stopped = true;
    this.items = [];
    this.head = 0;
    this.queued = 0;
    this.unpause();
    this.settle();
    return Promise.resolve({ done: true, value: undefined });
  }

  private settle(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.error) w.reject(this.error);
    else w.resolve({ done: true, value: undefined });
  }
}

const EMPTY = Buffer.alloc(0);
