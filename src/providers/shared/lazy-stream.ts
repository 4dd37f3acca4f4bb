import { tryNext, type Pollable } from "../../engine/poll.js";

/**
 * An async iterator that opens its source on the first `next()` (e.g. sends
 * the upstream request) and then hands every call straight to it. Unlike an
 * `async function*` that `yield*`s the source, a payload costs no extra
 * generator step; `return()` before or after opening closes the source.
 */
export class LazyStream<T> implements AsyncIterableIterator<T>, Pollable<T> {
  private source: AsyncIterator<T> | undefined;
  private opening: Promise<AsyncIterator<T>> | undefined;
  private closed = false;

  constructor(private readonly open: () => Promise<AsyncIterator<T>>) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  /** The opened source's ready result (see `engine/poll.ts`); `undefined` before it is open or when it has none. */
  tryNext(): IteratorResult<T> | undefined {
    return this.source ? tryNext(this.source) : undefined;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.source) return this.source.next();
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    this.opening ??= this.open();
    return this.opening.then((s) => {
      this.source = s;
      if (this.closed) {
        void s.return?.()?.catch(() => undefined);
        return { done: true, value: undefined };
      }
      // A ready first result is returned as it is: a promise returned here costs two more microtask turns to adopt.
      return tryNext(s) ?? s.next();
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.closed = true;
    const s = this.source;
    if (s?.return) return s.return().then(() => ({ done: true, value: undefined }));
    return Promise.resolve({ done: true, value: undefined });
  }
}
