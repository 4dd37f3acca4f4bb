/**
 * How each provider's upstream connections are made, set once from its
 * config (`http2`, `caFile`) and read by every HTTP and WebSocket call to it.
 *
 * - `http2: true`: HTTPS requests go out over HTTP/2 when the upstream offers
 *   it (ALPN; HTTP/1.1 otherwise). One connection carries many streams, and a
 *   cancelled stream is reset on its own (RST_STREAM) instead of the socket
 *   being destroyed: over HTTP/1.1 aborting a response mid-body can only close
 *   its connection, so the next call pays a new TCP and TLS handshake — the
 *   price of every barge-in and every client that goes away. Plain `http://`
 *   upstreams stay HTTP/1.1 (undici speaks HTTP/2 over TLS only).
 * - `caFile`: PEM certificates trusted for this provider's TLS, instead of
 *   Node's bundled roots (an internal CA in front of a self-hosted model).
 *
 * A provider with neither setting uses undici's global dispatcher, as before.
 */
import { readFileSync } from "node:fs";
import { Agent, getGlobalDispatcher, type Dispatcher } from "undici";

/** A provider's transport settings, as configured. */
export interface UpstreamTransportSettings {
  /** Offer HTTP/2 to HTTPS upstreams (default false). */
  readonly http2?: boolean | undefined;
  /** PEM file of the certificates to trust for this provider's TLS. */
  readonly caFile?: string | undefined;
}

interface Transport {
  readonly dispatcher: Dispatcher;
  readonly ca: Buffer | undefined;
}

const transports = new Map<string, Transport>();

/**
 * Sets the transport of every provider in `providers` from its settings
 * (replacing what an earlier config set for that name; a replaced
 * dispatcher finishes its calls in flight, then closes). Names not in
 * `providers` are left as they are (one process may run several gateways,
 * as the tests do; a provider removed by a reload is simply no longer
 * called). Throws, naming the field, when a `caFile` cannot be read;
 * nothing is changed then.
 */
export function configureUpstreamTransports(providers: Readonly<Record<string, UpstreamTransportSettings & { readonly type: string }>>): void {
  const next = new Map<string, Transport | undefined>();
  for (const [name, p] of Object.entries(providers)) {
    if (p.http2 !== true && p.caFile === undefined) {
      next.set(name, undefined);
      continue;
    }
    const ca = p.caFile === undefined ? undefined : readCa(name, p.caFile);
    next.set(name, { dispatcher: new Agent({ allowH2: p.http2 === true, ...(ca ? { connect: { ca } } : {}) }), ca });
  }
  for (const [name, t] of next) {
    const old = transports.get(name);
    if (t) transports.set(name, t);
    else transports.delete(name);
    if (old) void old.dispatcher.close().catch(() => undefined);
  }
}

function readCa(provider: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`providers.${provider}.caFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** The dispatcher that carries `provider`'s HTTP calls. */
export function dispatcherFor(provider: string): Dispatcher {
  return transports.get(provider)?.dispatcher ?? getGlobalDispatcher();
}

/** TLS options for `provider`'s WebSocket connections (`ws`'s `ca`), empty when it trusts Node's roots. */
export function socketTlsOptions(provider: string): { ca?: Buffer } {
  const ca = transports.get(provider)?.ca;
  return ca ? { ca } : {};
}
