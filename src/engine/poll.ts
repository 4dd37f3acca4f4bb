/**
 * An async iterator that can also hand over what it already holds without a
 * promise: `tryNext()` returns the next result when it is ready now (a
 * queued item, the end, or throws a queued error, as `next()` would reject),
 * and `undefined` when the caller must `await next()`. Optional everywhere:
 * a consumer that finds no `tryNext` just awaits `next()`.
 *
 * Why: an upstream read carries many events (a whole non-streamed answer, a
 * burst of SSE events); taking each one through `next()` cost a chain of
 * promises and microtask turns per chunk in the provider queue, the engine
 * and the door. With `tryNext` the door drains what is there in one turn.
 */
export interface Pollable<T> extends AsyncIterator<T> {
  tryNext?(): IteratorResult<T> | undefined;
}

/** `it.tryNext()` when `it` has one, else `undefined` (await `next()`). */
export function tryNext<T>(it: AsyncIterator<T>): IteratorResult<T> | undefined {
  const p = it as Pollable<T>;
  return p.tryNext === undefined ? undefined : p.tryNext();
}

/**
 * A fixed list of items as a {@link Pollable} (e.g. the payloads of a whole,
 * non-streamed answer): every item is ready at once. `return()` drops the rest.
 */
export class ListIterator<T> implements Pollable<T>, AsyncIterableIterator<T> {
  private i = 0;

  constructor(private items: readonly T[]) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  tryNext(): IteratorResult<T> {
    if (this.i < this.items.length) return { done: false, value: this.items[this.i++]! };
    return { done: true, value: undefined };
  }

  next(): Promise<IteratorResult<T>> {
    return Promise.resolve(this.tryNext());
  }

  return(): Promise<IteratorResult<T>> {
    this.items = [];
    return Promise.resolve({ done: true, value: undefined });
  }
}
