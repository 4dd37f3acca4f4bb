/**
 * Yields `first`, then the rest of an iterator whose start was already read
 * (e.g. to sniff a format); returning early closes the rest.
 */
export async function* replay<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  yield first;
  try {
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await rest.return?.();
  }
}
