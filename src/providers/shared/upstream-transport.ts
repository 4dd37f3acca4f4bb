/**
 * How each provider's upstream connections are made, set once from its
 * config (`http2`, `caFile`, `proxy`) and the process's proxy environment,
 * and read by every HTTP and WebSocket call to it.
 *
 * - `http2: true`: HTTPS requests go out over HTTP/2 when the upstream offers
 *   it (ALPN; HTTP/1.1 otherwise). One connection carries many streams, and a
 *   cancelled stream is reset on its own (RST_STREAM) instead of the socket
 *   being destroyed: over HTTP/1.1 aborting a response mid-body can only close
 *   its connection, so the next call pays a new TCP and TLS handshake — the
 *   price of every barge-in and every client that goes away. Plain `http://`
 *   upstreams stay HTTP/1.1 (undici speaks HTTP/2 over TLS only). Through a
 *   proxy too: the CONNECT tunnel's TLS offers h2.
 * - `caFile`: PEM certificates trusted for this provider's TLS, instead of
 *   Node's bundled roots (an internal CA in front of a self-hosted model),
 *   directly and through a proxy's tunnel.
 * - `proxy`: a forward proxy URL for all of this provider's calls (HTTP
 *   through undici's ProxyAgent — CONNECT for `https://`, absolute-form for
 *   `http://`, as proxies that allow CONNECT to port 443 only expect — and
 *   WebSockets through a CONNECT tunnel), or `false` for
 *   direct connections whatever the environment says. Unset, the process's
 *   `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case) apply, as curl
 *   reads them, except that loopback hosts are never sent to an environment
 *   proxy (a sidecar, a local model server, the tests' fakes).
 *
 * A provider with none of this uses undici's global dispatcher, as before.
 * Libraries with their own Node HTTP stack (the AWS credential chain) take
 * the same settings through {@link nodeAgentFor}.
 */
import { readFileSync } from "node:fs";
import type { Agent as HttpAgent, ClientRequest } from "node:http";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Agent as AgentBase, type AgentConnectOpts } from "agent-base";
import { HttpsProxyAgent } from "https-proxy-agent";
import { Agent, EnvHttpProxyAgent, getGlobalDispatcher, ProxyAgent, type Dispatcher } from "undici";

/** A provider's transport settings, as configured. */
export interface UpstreamTransportSettings {
  /** Offer HTTP/2 to HTTPS upstreams (default false). */
  readonly http2?: boolean | undefined;
  /** PEM file of the certificates to trust for this provider's TLS. */
  readonly caFile?: string | undefined;
  /** A forward proxy for every call, or false for none (default: the environment's). */
  readonly proxy?: string | false | undefined;
}

/** The process's proxy settings (from the environment). */
interface EnvProxy {
  readonly http: string | undefined;
  readonly https: string | undefined;
  /** NO_PROXY entries plus the loopback hosts. */
  readonly noProxy: string;
}

interface Transport {
  /** What it was built from (see {@link Wanted}). */
  readonly key: string;
  readonly dispatcher: Dispatcher;
  readonly ca: Buffer | undefined;
  /** The proxy for a WebSocket URL, if it goes through one. */
  readonly socketProxy: (url: URL) => string | undefined;
}

const LOOPBACK_NO_PROXY = "localhost,127.0.0.1,[::1]";
const transports = new Map<string, Transport>();
const proxyAgents = new Map<string, HttpAgent>();

/** Reads `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (upper case first, as undici does). */
export function envProxy(env: NodeJS.ProcessEnv = process.env): EnvProxy {
  const pick = (name: string): string | undefined => (env[name] || env[name.toLowerCase()]) ?? undefined;
  const noProxy = pick("NO_PROXY");
  return { http: pick("HTTP_PROXY"), https: pick("HTTPS_PROXY"), noProxy: noProxy ? `${noProxy},${LOOPBACK_NO_PROXY}` : LOOPBACK_NO_PROXY };
}

/**
 * Whether `url` skips the proxy under `noProxy` (comma- or space-separated
 * entries: `*`, a host, `.domain` or `domain` for it and its subdomains,
 * optionally `:port`) — the rules undici's EnvHttpProxyAgent applies to HTTP
 * calls, here for WebSockets.
 */
export function bypassesProxy(url: URL, noProxy: string): boolean {
  const port = url.port || (url.protocol === "https:" || url.protocol === "wss:" ? "443" : "80");
  const host = url.hostname.toLowerCase();
  for (const raw of noProxy.split(/[,\s]/)) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    if (e === "*") return true;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(e);
    if (!m) continue;
    if (m[2] && m[2] !== port) continue;
    const name = m[1]!.replace(/^\*?\./, "");
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/**
 * Sets the transport of every provider in `providers` from its settings and
 * the proxy environment `env` (replacing what an earlier config set for that
 * name; a replaced dispatcher finishes its calls in flight, then closes). A
 * provider whose settings, CA bytes and proxy environment are what they were
 * keeps its dispatcher and so its pooled connections: a reload that changes
 * something else costs no reconnects. Names not in `providers` are left as
 * they are (one process may run several gateways, as the tests do; a
 * provider removed by a reload is simply no longer called). Throws, naming
 * the field, when a `caFile` cannot be read; nothing is changed or created
 * then.
 */
export function configureUpstreamTransports(providers: Readonly<Record<string, UpstreamTransportSettings & { readonly type: string }>>, env: EnvProxy = envProxy()): void {
  const fromEnv = env.http !== undefined || env.https !== undefined;
  // First every setting and every CA file, so that a file that cannot be read throws before any dispatcher exists.
  const wanted = new Map<string, Wanted | undefined>();
  for (const [name, p] of Object.entries(providers)) {
    if (p.type === "local") continue;
    const explicit = typeof p.proxy === "string" ? p.proxy : undefined;
    const viaEnv = p.proxy === undefined && fromEnv;
    if (p.http2 !== true && p.caFile === undefined && explicit === undefined && !viaEnv) {
      wanted.set(name, undefined);
      continue;
    }
    const ca = p.caFile === undefined ? undefined : readCa(name, p.caFile);
    const key = JSON.stringify([p.http2 === true, ca?.toString("base64") ?? null, explicit ?? null, viaEnv ? [env.http ?? null, env.https ?? null, env.noProxy] : null]);
    wanted.set(name, { http2: p.http2 === true, ca, explicit, viaEnv, key });
  }
  for (const [name, w] of wanted) {
    const old = transports.get(name);
    if (w && old?.key === w.key) continue;
    if (w) transports.set(name, buildTransport(w, env));
    else transports.delete(name);
    if (old) void old.dispatcher.close().catch(() => undefined);
  }
}

/** One provider's wanted transport, its CA read. */
interface Wanted {
  readonly http2: boolean;
  readonly ca: Buffer | undefined;
  readonly explicit: string | undefined;
  readonly viaEnv: boolean;
  /** Equal keys make equal transports. */
  readonly key: string;
}

function buildTransport(w: Wanted, env: EnvProxy): Transport {
  const tls = w.ca ? { ca: w.ca } : {};
  // Through a proxy the upstream's TLS is set up on the tunnel by `requestTls`, not `connect`: the CA and the ALPN offer go there.
  const requestTls = { ...tls, allowH2: w.http2 };
  if (w.explicit !== undefined) {
    const proxy = w.explicit;
    return { key: w.key, ca: w.ca, dispatcher: new ProxyAgent({ uri: proxy, allowH2: w.http2, requestTls, proxyTunnel: false }), socketProxy: () => proxy };
  }
  if (w.viaEnv) {
    const dispatcher = new EnvHttpProxyAgent({
      ...(env.http ? { httpProxy: env.http } : {}),
      ...(env.https ? { httpsProxy: env.https } : {}),
      noProxy: env.noProxy,
      allowH2: w.http2,
      connect: tls,
      requestTls,
      // Handed to its ProxyAgents: plain http:// goes as absolute-form requests, not CONNECT.
      proxyTunnel: false,
    });
    return { key: w.key, ca: w.ca, dispatcher, socketProxy: (url) => (bypassesProxy(url, env.noProxy) ? undefined : url.protocol === "wss:" ? (env.https ?? env.http) : env.http) };
  }
  return { key: w.key, ca: w.ca, dispatcher: new Agent({ allowH2: w.http2, connect: tls }), socketProxy: () => undefined };
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

/**
 * Options for `ws` when `provider` opens `url`: its `ca`, and an `agent`
 * that tunnels through the provider's proxy (CONNECT) when it has one for
 * that URL; empty when it connects directly and trusts Node's roots.
 */
export function socketTlsOptions(provider: string, url: string): { ca?: Buffer; agent?: HttpAgent } {
  const t = transports.get(provider);
  if (!t) return {};
  const proxy = t.socketProxy(new URL(url));
  return { ...(t.ca ? { ca: t.ca } : {}), ...(proxy ? { agent: proxyAgentFor(proxy) } : {}) };
}

/** One tunnelling agent per proxy URL (the target's TLS, `ca` included, is set up per connection from ws's options). */
function proxyAgentFor(proxy: string): HttpAgent {
  let a = proxyAgents.get(proxy);
  if (!a) {
    a = new HttpsProxyAgent(proxy);
    proxyAgents.set(proxy, a);
  }
  return a;
}

const nodeAgents = new Map<string, HttpAgent>();

/**
 * A Node `http.Agent` (for `http:` and `https:` alike) that connects as
 * `provider`'s transport says at the time of each connection: through its
 * proxy (a CONNECT tunnel, `NO_PROXY` applied) and trusting its `caFile`,
 * or directly with Node's defaults when it has neither. For libraries that
 * bring their own HTTP client (the AWS SDK's credential providers take it
 * as `requestHandler: { httpAgent, httpsAgent }`). One per provider name.
 */
export function nodeAgentFor(provider: string): HttpAgent {
  let a = nodeAgents.get(provider);
  if (!a) {
    a = new TransportAgent(provider);
    nodeAgents.set(provider, a);
  }
  return a;
}

/** The agent {@link nodeAgentFor} gives: each connection looks its provider's transport up. */
class TransportAgent extends AgentBase {
  constructor(private readonly provider: string) {
    super({ keepAlive: true });
  }

  override connect(req: ClientRequest, opts: AgentConnectOpts): Socket | HttpAgent {
    const t = transports.get(this.provider);
    const secure = opts.secureEndpoint;
    // The options object is handed on to a proxy agent unchanged: the target's TLS (the CA) is set up from it there.
    if (secure && t?.ca) Object.assign(opts, { ca: t.ca });
    const proxy = t?.socketProxy(new URL(`${secure ? "wss" : "ws"}://${req.host}:${opts.port}/`));
    if (proxy) return proxyAgentFor(proxy);
    if (!secure) return netConnect(opts);
    const servername = opts.servername ?? (isIP(req.host) ? undefined : req.host);
    return tlsConnect({ ...opts, ...(servername ? { servername } : {}) });
  }
}
