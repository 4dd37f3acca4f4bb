import type { Pollable } from "../../engine/poll.js";

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
   * queue carries every 20 ms of a session's audio). It is a
   * {@link Pollable}: `tryNext()` hands over a value already queued (or the
   * end, or throws the failure) without a promise, so a reader drains what
   * is there in one turn; `next()` waiting for a push is resolved by that
   * push with the value itself (one microtask to the reader). `return()`
   * (a `break`) stops this iterator; the queue itself stays as it is.
   */
  [Symbol.asyncIterator](): Pollable<T> {
    let finished = false;
    const done = (): IteratorResult<T> => {
      finished = true;
      return { value: undefined, done: true };
    };
    /** The queue's failure, once (then the iterator is finished). */
    const failure = (): Error | undefined => {
      if (finished || this.error === undefined) return undefined;
      finished = true;
      return this.error;
    };
    const ready = (): IteratorResult<T> | undefined => {
      if (finished) return { value: undefined, done: true };
      if (this.items.length > 0) return { value: this.items.shift()!, done: false };
      if (this.closed) return done();
      return undefined;
    };
    const tryNext = (): IteratorResult<T> | undefined => {
      const e = failure();
      if (e) throw e;
      return ready();
    };
    const next = (): Promise<IteratorResult<T>> => {
      const e = failure();
      if (e) return Promise.reject(e);
      const r = ready();
      if (r) return Promise.resolve(r);
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        // Called by push, close or fail: a value, the end or the failure is there now.
        this.wake = () => {
          const err = failure();
          if (err) reject(err);
          else resolve(ready() ?? done());
        };
      });
    };
    return { next, tryNext, return: () => Promise.resolve(done()) };
  }
}
