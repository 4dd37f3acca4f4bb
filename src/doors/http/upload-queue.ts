/**
 * The bytes of an uploaded part between the body parser (which pushes them
 * as uWS hands them over: a request body cannot be paused) and one reader
 * (a recognizer), as an async iterator. Unread bytes wait in memory; what
 * bounds them is the upload limit the parser enforces. {@link fail} makes
 * the reader throw at its next read, dropping what it had not read (a 413
 * stops the recognizer at once, not after the backlog); a reader that stops
 * early (`return()`) makes later pushes no-ops, so nothing piles up.
 */
export class UploadQueue implements AsyncIterableIterator<Buffer> {
  /** Bytes pushed so far (read or not). */
  size = 0;
  private items: Buffer[] = [];
  private head = 0;
  private ended = false;
  private stopped = false;
  private error: Error | undefined;
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: unknown) => void } | undefined;

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
  }

  /** The part ended: the reader gets what is queued, then the end. */
  end(): void {
    if (this.ended || this.error) return;
    this.ended = true;
    this.settle();
  }

  /** The upload failed: the reader's next read throws `err`; unread pieces are dropped. */
  fail(err: Error): void {
    if (this.ended || this.error) return;
    this.error = err;
    this.items = [];
    this.head = 0;
    this.settle();
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.error) return Promise.reject(this.error);
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.items[this.head++] = EMPTY;
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
      }
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
