/**
 * An upstream WebSocket (Deepgram live recognition, ElevenLabs input
 * streaming) under a call's AbortSignal, read as an async iterable of
 * messages. The upstream's handshake refusal (an HTTP status) is mapped by
 * the provider, like an HTTP error; a connection failure is `Unavailable`;
 * aborting the call closes the socket at once (the upstream sees a close
 * frame, then the TCP connection goes).
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { isIPv4 } from "node:net";
import WebSocket from "ws";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { connectionError } from "./upstream-errors.js";
import { socketTlsOptions } from "./upstream-transport.js";

/** Most bytes of a refused handshake's body that are read. */
const MAX_ERROR_BODY = 64 * 1024;
/** Messages queued unread before the socket is paused (resumed at a quarter). */
const HIGH_WATER = 64;
/** How long a closing socket may take to answer the close frame before it is destroyed. */
const CLOSE_GRACE_MS = 500;

/** Hosts of a loopback WebSocket URL (`URL.hostname` spellings). */
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * True when the gateway's frames to `url` may go with an all-zero mask key:
 * a loopback host only (`ws://` or `wss://`). A client's frames must be
 * masked with an unpredictable key (RFC 6455 §5.3) so that bytes a caller
 * chose — here a realtime client's audio, passed on to Deepgram — cannot
 * be made to look like an HTTP request to an intermediary that reads the
 * frames (cache poisoning). Over the network that includes a TLS-
 * intercepting egress proxy, which decrypts `wss://` (a gateway told to
 * trust its CA through `caFile` or `NODE_EXTRA_CA_CERTS`), so real
 * providers get random keys. On loopback nothing sits in between, and with
 * a zero key `ws` sends the payload as it is instead of copying it into a
 * masked buffer (a fake provider in tests and benchmarks, a sidecar). The
 * frames stay valid: the mask bit is set, the key is 0.
 */
export function zeroMaskAllowed(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (u.protocol === "wss:" || u.protocol === "ws:") && (LOOPBACK.has(u.hostname) || (isIPv4(u.hostname) && u.hostname.startsWith("127.")));
}

/** The all-zero mask key (see {@link zeroMaskAllowed}). */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** A message from the upstream. */
export type SocketMessage = { readonly text: string; readonly binary?: undefined } | { readonly binary: Buffer; readonly text?: undefined };

/** How the upstream closed the socket. */
export interface SocketClose {
  readonly code: number;
  readonly reason: string;
}

/** Maps a refused handshake (status, body, Retry-After) to the provider's error. */
export type HandshakeErrorMapper = (status: number, body: string, retryAfter: string | undefined) => SpillwayError;

/** What {@link connectUpstreamSocket} needs. */
export interface UpstreamSocketOptions {
  /** Provider name, for messages. */
  readonly provider: string;
  /** `wss://…` (or `ws://` for a local fake). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The call's signal: aborting it closes the socket. */
  readonly signal: AbortSignal;
  /** Maps a refused handshake. */
  readonly refused: HandshakeErrorMapper;
}

/** An open upstream socket. */
export interface UpstreamSocket extends AsyncIterable<SocketMessage> {
  /** Sends a text (JSON) or binary frame; false when the socket is no longer open. */
  send(data: string | Uint8Array): boolean;
  /** Bytes queued for the upstream and not sent yet. */
  readonly bufferedAmount: number;
  /** True until the socket closed or is closing. */
  readonly isOpen: boolean;
  /** How the upstream closed (once closed). */
  readonly closed: SocketClose | undefined;
  /** Closes the socket (close frame, then destroyed after a short grace). Safe to call twice. */
  close(code?: number, reason?: string): void;
}

/**
 * Opens a WebSocket to an upstream and resolves once it is open. Rejects
 * with the provider's error for a refused handshake, `Unavailable` for a
 * connection failure, the abort reason when the call was aborted.
 */
export function connectUpstreamSocket(o: UpstreamSocketOptions): Promise<UpstreamSocket> {
  if (o.signal.aborted) return Promise.reject(SpillwayError.from(o.signal.reason));
  const ws = new WebSocket(o.url, { headers: { ...o.headers }, perMessageDeflate: false, ...socketTlsOptions(o.provider, o.url), ...(zeroMaskAllowed(o.url) ? { generateMask: zeroMask } : {}) });
  return new Promise<UpstreamSocket>((resolve, reject) => {
    let settled = false;
    const fail = (e: SpillwayError): void => {
      if (settled) return;
      settled = true;
      o.signal.removeEventListener("abort", onAbort);
      reject(e);
    };
    const onAbort = (): void => {
      ws.terminate();
      fail(SpillwayError.from(o.signal.reason));
    };
    o.signal.addEventListener("abort", onAbort, { once: true });
    ws.once("unexpected-response", (_req: ClientRequest, res: IncomingMessage) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        if (size < MAX_ERROR_BODY) parts.push(d);
        size += d.length;
      });
      const done = (): void => {
        const header: string | string[] | undefined = res.headers["retry-after"];
        const retryAfter = typeof header === "string" ? header : header?.[0];
        fail(o.refused(res.statusCode ?? 502, Buffer.concat(parts).toString("utf8").slice(0, MAX_ERROR_BODY), retryAfter));
        ws.terminate();
      };
      res.once("end", done);
      res.once("error", done);
    });
    ws.once("error", (e) => fail(connectionError(o.provider, e, o.signal)));
    ws.once("open", () => {
      if (settled) return;
      settled = true;
      o.signal.removeEventListener("abort", onAbort);
      resolve(new OpenSocket(ws, o.provider, o.signal));
    });
  });
}

class OpenSocket implements UpstreamSocket {
  private readonly queue: SocketMessage[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private error: SpillwayError | undefined;
  private paused = false;
  closed: SocketClose | undefined;

  constructor(
    private readonly ws: WebSocket,
    provider: string,
    private readonly signal: AbortSignal,
  ) {
    ws.on("message", (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.queue.push(isBinary ? { binary: buf } : { text: buf.toString("utf8") });
      if (this.queue.length >= HIGH_WATER && !this.paused) {
        this.paused = true;
        ws.pause();
      }
      this.signalReader();
    });
    ws.on("error", (e) => {
      this.error ??= connectionError(provider, e, signal);
      this.signalReader();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString("utf8") };
      this.ended = true;
      signal.removeEventListener("abort", this.onAbort);
      this.signalReader();
    });
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => {
    this.close(1000, "cancelled");
  };

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data: string | Uint8Array): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data);
    return true;
  }

  close(code = 1000, reason = ""): void {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    const ws = this.ws;
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private signalReader(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SocketMessage> {
    try {
      for (;;) {
        const m = this.queue.shift();
        if (m !== undefined) {
          if (this.paused && this.queue.length <= HIGH_WATER / 4) {
            this.paused = false;
            this.ws.resume();
          }
          yield m;
          continue;
        }
        if (this.signal.aborted) throw SpillwayError.from(this.signal.reason);
        if (this.error) throw this.error;
        if (this.ended) return;
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      this.close();
    }
  }
}

/**
 * The socket's text messages parsed as JSON objects, for the upstreams that
 * speak JSON over a WebSocket (Deepgram, ElevenLabs): binary messages and
 * JSON that is not an object are skipped; a text message that is not JSON
 * throws `notJson` (and closes the socket, as leaving the loop does). The
 * socket's own errors pass through as they are.
 */
export async function* jsonMessages(socket: UpstreamSocket, notJson: Error): AsyncGenerator<Record<string, unknown>, void, undefined> {
  for await (const m of socket) {
    if (m.text === undefined) continue;
    let j: unknown;
    try {
      j = JSON.parse(m.text);
    } catch {
      throw notJson;
    }
    if (typeof j === "object" && j !== null && !Array.isArray(j)) yield j as Record<string, unknown>;
  }
}

/** The error for an upstream socket that closed abnormally (`reason` is the upstream's close reason). */
export function socketClosedError(provider: string, close: SocketClose | undefined, what: string): SpillwayError {
  const code = close?.code ?? 1006;
  const detail = close?.reason ? `: ${close.reason}` : "";
  // 1008 (policy) and 1003/1007 (bad data) are the request's fault; the rest is the upstream's.
  if (code === 1008 || code === 1003 || code === 1007) {
    return new SpillwayError(Code.InvalidArgument, `${provider}: the upstream refused the ${what} (close ${code}${detail})`, {
      httpStatus: 400,
      reason: "upstream_rejected",
      fromUpstream: true,
    });
  }
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream closed the ${what} (close ${code}${detail})`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
  });
}
