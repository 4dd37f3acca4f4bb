/**
 * The `traceparent` each attempt passes to its upstream, keyed by the
 * attempt's AbortSignal (the one every provider hands to every upstream
 * request: `ProviderContext.signal`), so providers carry it without knowing
 * of tracing. Until tracing registers one, a lookup is one branch.
 */
const carriers = new WeakMap<AbortSignal, string>();
let used = false;

/** Makes upstream requests sent with `signal` carry `traceparent`. */
export function setUpstreamTraceparent(signal: AbortSignal, traceparent: string): void {
  used = true;
  carriers.set(signal, traceparent);
}

/** The `traceparent` for an upstream request sent with `signal`, if its attempt is traced. */
export function upstreamTraceparent(signal: AbortSignal): string | undefined {
  return used ? carriers.get(signal) : undefined;
}

/**
 * {@link upstreamTraceparent} for a signal or for anything that holds the
 * attempt's signal (an `AbortSource`): the holder's signal is only read when
 * tracing has registered a carrier, so an untraced call makes none.
 */
export function upstreamTraceparentOf(a: AbortSignal | { readonly signal: AbortSignal }): string | undefined {
  if (!used) return undefined;
  return carriers.get(a instanceof AbortSignal ? a : a.signal);
}
