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

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const next = this.items.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
