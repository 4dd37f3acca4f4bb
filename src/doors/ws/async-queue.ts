/**
 * A push-to-pull bridge: producers `push()` values, one consumer iterates.
 * `close()` ends the iteration after what was pushed; `fail()` makes it
 * throw. Unbounded by design: callers bound what they push (sentences of a
 * response, audio of one committed turn).
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private closed = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  /** Adds a value; ignored once closed. */
  push(value: T): void {
    if (this.closed) return;
    this.items.push(value);
    this.signal();
  }

  /** Ends the iteration once the pushed values are consumed. */
  close(): void {
    this.closed = true;
    this.signal();
  }

  /** Ends the iteration with `error` (pending values are dropped). */
  fail(error: unknown): void {
    this.error = error instanceof Error ? error : new Error(String(error));
    this.items.length = 0;
    this.close();
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * The consumer's iterator: a plain object rather than an async generator
   * (a generator costs a few promises and microtask turns per value, and the
   * queue carries every 20 ms of a session's audio). `return()` (a `break`)
   * stops this iterator; the queue itself stays as it is.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    let finished = false;
    const done = (): IteratorResult<T> => {
      finished = true;
      return { value: undefined, done: true };
    };
    const next = (): Promise<IteratorResult<T>> => {
      if (finished) return Promise.resolve({ value: undefined, done: true });
      if (this.error !== undefined) {
        finished = true;
        return Promise.reject(this.error);
      }
      if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
      if (this.closed) return Promise.resolve(done());
      return new Promise<void>((resolve) => (this.wake = resolve)).then(next);
    };
    return { next, return: () => Promise.resolve(done()) };
  }
}
