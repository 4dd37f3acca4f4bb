import type { HttpRequest, HttpResponse } from "uWebSockets.js";
import type { StreamSummary } from "../../engine/active-stream.js";
import { overloadCause, type Principal } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { OnDemandAbortSource } from "../../engine/signals.js";
import { uuidV4 } from "../../engine/stream-id.js";
import { statusLine } from "./status.js";
import type { RenderedError, RequestHeaders, Shape } from "./shapes/shape.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";

/** Headers sent on every response. */
const COMMON_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["access-control-allow-origin", "*"],
  ["access-control-expose-headers", "x-request-id, request-id, x-spillway-provider, x-spillway-model, x-spillway-key, x-spillway-cache, retry-after, x-should-retry"],
];

/** Request headers the route runner reads for every shape: W3C trace context and the cache mode. */
const POLICY_HEADERS = ["traceparent", "tracestate", "x-spillway-cache"] as const;

/** Response headers as name/value pairs. */
export type Headers = ReadonlyArray<readonly [string, string]>;

/**
 * After refusing a chunked body it has not read (413, 415, 401…), the
 * exchange keeps reading and discarding it for up to this long, as nginx's
 * lingering close does, so a client still sending reads its answer instead
 * of `EPIPE` (a declared length: see `linger`).
 */
const LINGER_MS = 5_000;
/** …and for at most this many bytes (of a declared length: its unread rest); then the connection is closed. */
const LINGER_MAX_BYTES = 64 * 1024 * 1024;

/**
 * A refusal for overload of a request whose declared body is at most this
 * long waits for the body (read and dropped) and keeps the connection open:
 * a client turned away in a flood retries on the same connection instead of
 * paying, and making the gateway pay, a TCP close and a new handshake per
 * refusal. Longer or chunked bodies linger and close as every other refusal.
 */
const KEEP_ALIVE_REFUSAL_MAX_BODY = 64 * 1024;

/** The shared refusals for overload (`overloadCause`), rendered once per shape: a flood of them renders no JSON. */
type Rendered = { plain: RenderedError; closing: Headers };
const renderedRefusals = new WeakMap<Shape, Map<SpillwayError, Rendered>>();

/** `err` rendered in `shape`, and its headers with `connection: close`: cached for the shared refusals. */
function rendered(shape: Shape, err: SpillwayError): Rendered {
  const shared = overloadCause(err) !== undefined;
  let byErr = shared ? renderedRefusals.get(shape) : undefined;
  const hit = byErr?.get(err);
  if (hit) return hit;
  const plain = shape.renderError(err);
  const r: Rendered = { plain, closing: [...plain.headers, ["connection", "close"]] };
  if (shared) {
    if (!byErr) renderedRefusals.set(shape, (byErr = new Map<SpillwayError, Rendered>()));
    byErr.set(err, r);
  }
  return r;
}

type BodyState = "unread" | "reading" | "read" | "discarding";

/**
 * One body read in progress ({@link HttpExchange.consumeBody}): its state,
 * its promise's settling functions and what it does with each piece — one
 * object per read, no closure (under tsx each named arrow made per request
 * costs an `Object.defineProperty`, and every closure is garbage).
 */
interface BodyRead {
  size: number;
  settled: boolean;
  readonly limit: number;
  /** Each piece copied (streamBody), or undefined to gather the body (readBodyText). */
  readonly onChunk: ((chunk: Buffer) => void) | undefined;
  /** readBodyText: the pieces so far, copied (a body in several pieces is decoded once whole). */
  parts: Buffer[] | undefined;
  readonly resolve: (text: string | undefined) => void;
  readonly reject: (e: SpillwayError) => void;
}

/**
 * One HTTP request/response on uWebSockets.js, made safe to use across
 * `await`s: request headers are copied before the handler's first await,
 * `onAborted` is registered at once, every write is corked, nothing touches
 * the response after the client has gone, and writes report backpressure.
 */
export class HttpExchange {
  /** True once the client has gone away; nothing more may be written. */
  aborted = false;
  /** True once the response has been ended. */
  finished = false;
  /** Whether the status line and headers have been sent. */
  private started = false;
  /**
   * The client going away, as the engine takes it without an AbortSignal
   * (see {@link AbortSource}): a signal and a listener on it cost about 3 µs
   * per request in Node 20, the callbacks nearly nothing.
   */
  readonly abortSource: OnDemandAbortSource;
  readonly method: string;
  readonly url: string;
  readonly query: string;
  readonly requestId: string;
  readonly contentType: string;
  /** The Content-Type header as sent (a multipart boundary is case-sensitive). */
  readonly rawContentType: string;
  readonly contentLength: number | undefined;
  /** The request headers the route's shape reads (see {@link Shape.headers}), by lower-case name. */
  readonly headers: RequestHeaders;
  /** The wire shape whose errors this exchange renders. */
  readonly shape: Shape;
  /** Who is calling, once the door has authenticated the request. */
  principal: Principal | undefined;
  /** performance.now() when the request arrived. */
  readonly startedAt = performance.now();
  /** The status sent, once the head is written. */
  status = 0;
  /** Body bytes handed to the socket (text written but still batched when the client left is not counted). */
  bytesOut = 0;
  /** The engine stream's summary, once the stream this request opened has ended. */
  summary: StreamSummary | undefined;
  private onWritableWaiter: (() => void) | undefined;
  private writableRegistered = false;
  /** Status and headers of a started response, until the first flush sends them. */
  private head: [number, string, Headers] | undefined;
  /** Text written but not yet handed to the socket. */
  private pending = "";
  private flushQueued = false;
  /** While the socket is full: resolves when it can take more. */
  private blocked: Promise<void> | undefined;
  /** Headers added once a stream is open (`x-spillway-*`), sent with the head: the first list added as it is (often a shared one), copied if more come. */
  private extraHeaders: Headers | undefined;
  private extraOwned = false;
  private bodyState: BodyState;
  /** The body read in progress: gets each piece (valid only during the uWS callback). */
  private bodyRead: BodyRead | undefined;
  private bodyRegistered = false;
  /** Bytes of a refused body read and dropped (lingering close). */
  private discarded = 0;
  /** Bytes of the body uWS has handed over so far, read or dropped. */
  private received = 0;
  /** An answer held back until a refused chunked body has been drained. */
  private deferred: ((close: boolean) => void) | undefined;
  /** The cork callback of {@link HttpExchange.flushBatch} (made on its first flush) and what it saw. */
  private corkFlush: (() => void) | undefined;
  private corkedOk = true;
  /** True while uWS is told to stop reading the body ({@link HttpExchange.pauseBody}). */
  private bodyPaused = false;

  constructor(
    private readonly res: HttpResponse,
    req: HttpRequest,
    shape: Shape,
  ) {
    tracePhase(TracePhase.Arrived, this, "sse");
    this.abortSource = new OnDemandAbortSource();
    this.method = req.getMethod();
    this.url = req.getUrl();
    this.query = req.getQuery() ?? "";
    this.requestId = req.getHeader("x-request-id").slice(0, 128) || uuidV4();
    this.rawContentType = req.getHeader("content-type");
    this.contentType = this.rawContentType.toLowerCase();
    const cl = req.getHeader("content-length");
    this.contentLength = cl ? Number(cl) : undefined;
    this.shape = shape;
    const headers: Record<string, string> = {};
    for (const name of shape.headers) headers[name] = req.getHeader(name);
    // Policy headers every route honours (tracing, response cache), whatever its shape.
    for (const name of POLICY_HEADERS) headers[name] = req.getHeader(name);
    this.headers = headers;
    const hasBody = (this.contentLength !== undefined && this.contentLength > 0) || req.getHeader("transfer-encoding") !== "";
    this.bodyState = hasBody ? "unread" : "read";
    res.onAborted(() => {
      this.aborted = true;
      this.abortSource.abort(new SpillwayError(Code.Canceled, "the client closed the connection"));
      // A body read in progress fails with the reason (no listener on the signal per body read).
      const read = this.bodyRead;
      if (read && !read.settled) this.failBody(read, SpillwayError.from(this.abortSource.abortReason));
      this.wake();
    });
  }

  /** Aborts when the client goes away (made on first use; prefer {@link HttpExchange.abortSource} on hot paths). */
  get signal(): AbortSignal {
    return this.abortSource.signal;
  }

  /** Reads the whole request body, up to `limit` bytes; larger bodies fail with 413 at once. */
  readBody(limit: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    return this.streamBody(limit, (chunk) => {
      size += chunk.length;
      parts.push(chunk);
    }).then(() => (parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
  }

  /**
   * Reads the whole request body as UTF-8 text (as `readBody(limit)` then
   * `toString("utf8")`: a body in several pieces is decoded once whole, so a
   * character split between pieces is read as one), up to `limit` bytes;
   * larger bodies fail with 413 at once. A body that arrives in one piece
   * (the usual JSON request) is decoded straight from uWS's buffer: no copy.
   */
  readBodyText(limit: number): Promise<string> {
    return this.consumeBody(limit, undefined) as Promise<string>;
  }

  /**
   * Streams the request body chunk by chunk: `onChunk` gets a copy of each
   * chunk; a body over `limit` fails with 413 before the rest is read.
   * Returns a promise that resolves at the end of the body.
   */
  streamBody(limit: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    return this.consumeBody(limit, onChunk) as Promise<unknown> as Promise<void>;
  }

  /** Reads the body: each piece to `onChunk` (resolves with undefined), or gathered as text (resolves with it; "" for none). */
  private consumeBody(limit: number, onChunk: ((chunk: Buffer) => void) | undefined): Promise<string | undefined> {
    if (this.contentLength !== undefined && this.contentLength > limit) {
      return Promise.reject(tooLarge(limit));
    }
    if (this.bodyState === "read") return Promise.resolve(onChunk ? undefined : "");
    this.bodyState = "reading";
    return new Promise((resolve, reject) => {
      this.bodyRead = { size: 0, settled: false, limit, onChunk, parts: undefined, resolve, reject };
      this.registerBody();
    });
  }

  /** One piece of the body for the read in progress (the ArrayBuffer is only valid during this call). */
  private bodyPiece(read: BodyRead, ab: ArrayBuffer, isLast: boolean): void {
    if (read.settled) return;
    read.size += ab.byteLength;
    if (read.size > read.limit) return this.failBody(read, tooLarge(read.limit));
    let text: string | undefined;
    try {
      if (read.onChunk) read.onChunk(Buffer.from(new Uint8Array(ab)));
      else if (isLast && read.parts === undefined) text = Buffer.from(ab).toString("utf8");
      else {
        // The ArrayBuffer is only valid during this callback: copy it.
        (read.parts ??= []).push(Buffer.from(new Uint8Array(ab)));
        if (isLast) text = (read.parts.length === 1 ? read.parts[0]! : Buffer.concat(read.parts, read.size)).toString("utf8");
      }
    } catch (e) {
      return this.failBody(read, SpillwayError.from(e));
    }
    if (isLast) {
      read.settled = true;
      read.parts = undefined;
      this.bodyRead = undefined;
      read.resolve(text);
    }
  }

  /** Ends a body read with `e`: the consumer is detached and its promise rejected. */
  private failBody(read: BodyRead, e: SpillwayError): void {
    read.settled = true;
    read.parts = undefined;
    this.bodyRead = undefined;
    read.reject(e);
  }

  /**
   * Stops reading the request body from the socket (uWS `pause`: the
   * client's upload slows to what the reader takes) until
   * {@link HttpExchange.resumeBody}. No-op once the client has gone or the
   * body has been read. While paused uWS also stops the socket's idle
   * timeout; the caller's reader must resume it (its own timeouts bound a
   * reader that never reads again).
   */
  pauseBody(): void {
    if (this.bodyPaused || this.aborted || this.bodyState !== "reading") return;
    this.bodyPaused = true;
    try {
      this.res.pause();
    } catch {
      // uWS refuses access once the response counts as done: nothing left to pause.
      this.bodyPaused = false;
    }
  }

  /** Reads the body again after {@link HttpExchange.pauseBody}; no-op when not paused. */
  resumeBody(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    if (this.aborted) return;
    try {
      this.res.resume();
    } catch {
      // uWS refuses access once the response counts as done: nothing left to read.
    }
  }

  /** Registers the one uWS body handler, which hands pieces to the current consumer or discards them. */
  private registerBody(): void {
    if (this.bodyRegistered) return;
    this.bodyRegistered = true;
    this.res.onData((ab, isLast) => this.dataIn(ab, isLast));
  }

  /** uWS's body callback: the piece to the read in progress, or dropped while lingering. */
  private dataIn(ab: ArrayBuffer, isLast: boolean): void {
    const discarding = this.bodyState === "discarding";
    this.received += ab.byteLength;
    if (isLast) this.bodyState = "read";
    const read = this.bodyRead;
    if (read) return this.bodyPiece(read, ab, isLast);
    if (!discarding) return;
    this.discarded += ab.byteLength;
    if (isLast) this.answerDeferred(false);
    else if (this.discarded > LINGER_MAX_BYTES) this.stopLingering();
  }

  /**
   * After refusing the body: reads and drops what the client still sends,
   * so its answer is not lost to a reset connection.
   * - A chunked body is drained first and answered at its end (`answer`),
   *   since uWS drops a connection whose chunked body outlives its response;
   *   bounded by {@link LINGER_MS} and {@link LINGER_MAX_BYTES}, then the
   *   answer goes out and the connection is closed.
   * - With a declared length the answer goes out at once. If the rest of the
   *   declared body is within {@link LINGER_MAX_BYTES}, uWS keeps reading
   *   (and this drops) the body it knows the end of, and its idle timeout
   *   (10 s without a byte) closes a client that stops sending; the
   *   connection can no longer be closed from here once the answer has
   *   ended (uWS refuses access to a finished response). A longer rest is not
   *   read: the answer goes out with the connection closed behind it.
   * - With `waitForEnd` (a small declared body refused for overload,
   *   {@link KEEP_ALIVE_REFUSAL_MAX_BODY}) the declared body is drained first
   *   too, as a chunked one, and `answer(false)` at its end may keep the
   *   connection open.
   */
  private linger(answer: (close: boolean) => void, waitForEnd = false): void {
    this.resumeBody();
    this.bodyState = "discarding";
    this.bodyRead = undefined;
    this.registerBody();
    if (this.contentLength !== undefined && !waitForEnd) {
      answer(this.contentLength - this.received > LINGER_MAX_BYTES);
      return;
    }
    this.deferred = answer;
    setTimeout(() => {
      if (this.bodyState === "discarding") this.stopLingering();
    }, LINGER_MS).unref();
  }

  private answerDeferred(close: boolean): boolean {
    const d = this.deferred;
    this.deferred = undefined;
    d?.(close);
    return d !== undefined;
  }

  /** The linger bounds are reached: answer (closing once it is written) if not yet, else close now. */
  private stopLingering(): void {
    this.bodyState = "read";
    if (this.answerDeferred(true) || this.aborted) return;
    this.aborted = true;
    try {
      this.res.close();
    } catch {
      // uWS refuses access once the response counts as done (the client closed after its answer): nothing left to close.
    }
  }

  /** Adds response headers sent with the head (before it is written). */
  addHeaders(headers: Headers): void {
    if (headers.length === 0) return;
    const had = this.extraHeaders;
    if (had === undefined) {
      // Not copied: the caller's list may be shared (see routeHeaders), so it is copied before anything is added to it.
      this.extraHeaders = headers;
      return;
    }
    const mine: Array<readonly [string, string]> = this.extraOwned ? (had as Array<readonly [string, string]>) : [...had];
    for (const h of headers) mine.push(h);
    this.extraHeaders = mine;
    this.extraOwned = true;
  }

  /** Sends a complete response. No-op once the client is gone or a response was sent. */
  send(status: number, contentType: string, body: string | Uint8Array, headers: Headers = [], close = false): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    this.bytesOut += byteLength(body);
    this.res.cork(() => {
      if (!this.started) this.writeHead(status, contentType, headers);
      else this.writePending();
      this.res.end(body, close);
    });
  }

  /** Sends a JSON response. */
  json(status: number, body: unknown, headers: Headers = []): void {
    this.send(status, "application/json", typeof body === "string" ? body : JSON.stringify(body), headers);
  }

  /**
   * Sends an error in the shape's form with its status. When the response
   * has already started (a stream), the caller must use an in-band error
   * instead; this then only ends the response. A body not read yet is read
   * and dropped after the answer (lingering close), and the connection is
   * then closed (`Connection: close`).
   */
  error(reason: unknown): void {
    const err = SpillwayError.from(reason);
    if (this.started) {
      this.end();
      return;
    }
    const { plain: r, closing } = rendered(this.shape, err);
    if (this.bodyState !== "read" && !this.aborted && !this.finished) {
      // A small declared body refused for overload: drained, then answered on a connection kept open.
      const keepAlive = this.contentLength !== undefined && this.contentLength <= KEEP_ALIVE_REFUSAL_MAX_BODY && overloadCause(err) !== undefined;
      this.linger((close) => this.send(r.status, r.contentType, r.body, keepAlive && !close ? r.headers : closing, close), keepAlive);
      return;
    }
    this.send(r.status, r.contentType, r.body, r.headers);
  }

  /**
   * Starts a streamed response: status and headers go out with the first
   * batch of body (or on their own once this turn's microtasks have run).
   */
  start(status: number, contentType: string, headers: Headers = []): void {
    if (this.aborted || this.started) return;
    this.started = true;
    this.status = status;
    this.head = [status, contentType, headers];
    this.scheduleFlush();
  }

  /**
   * Writes a piece of a started response. Returns `undefined` when the socket
   * took it, or a promise that resolves once the socket can take more (or the
   * client left): await it before producing the next piece.
   *
   * Text is batched: pieces written in the same turn of the event loop (the
   * events of one upstream read) go out corked together in one syscall once
   * the turn's microtasks have run (`process.nextTick`), so a chunk costs a
   * string concatenation, not a send.
   * Backpressure seen by that flush is reported by the next `write`. Bytes
   * are written at once (after any batched text), as the caller may reuse
   * its buffer.
   */
  write(data: string | Uint8Array): Promise<void> | undefined {
    if (this.aborted || this.finished) return undefined;
    if (typeof data === "string") {
      // Counted in bytesOut when the batch is handed to the socket (one byteLength per batch, not per piece).
      this.pending += data;
      if (this.blocked) return this.blocked;
      this.scheduleFlush();
      return undefined;
    }
    this.bytesOut += data.byteLength;
    let ok = true;
    this.res.cork(() => {
      ok = this.writePending();
      ok = this.res.write(data) && ok;
    });
    return ok ? this.blocked : this.block();
  }

  /** Ends a started response (with a last piece, when given), after any batched text. */
  end(data?: string): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    if (data) this.bytesOut += Buffer.byteLength(data);
    this.res.cork(() => {
      this.writePending();
      this.res.end(data);
    });
    // A stream whose whole answer came in one turn is flushed here, not by flushBatch.
    tracePhase(TracePhase.FirstFlush, this, "sse");
  }

  /** Closes the connection at once (shutdown); the client sees it drop. */
  close(): void {
    if (this.aborted) return;
    this.finished = true;
    this.res.close();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // After the microtask queue has drained: every piece written while this
    // turn's promises settle (all events of one upstream read) goes in one
    // send, before the event loop moves on (setImmediate waited for the rest
    // of the poll phase, which under load is most of the added latency).
    process.nextTick(flushExchange, this);
  }

  /** Hands the batched head and text to the socket in one cork (one syscall); run from `process.nextTick` ({@link flushExchange}). */
  flushBatch(): void {
    this.flushQueued = false;
    if (this.aborted || this.finished || this.blocked) return;
    if (!this.head && this.pending.length === 0) return;
    // The exchange's own cork callback, made once (a flush per upstream read of a stream: no closure each).
    this.corkedOk = true;
    this.res.cork((this.corkFlush ??= corkFlushOf(this)));
    tracePhase(TracePhase.FirstFlush, this, "sse");
    if (!this.corkedOk) void this.block();
  }

  /** Inside {@link HttpExchange.flushBatch}'s cork: writes what is pending, noting whether the socket took it all. */
  corkedFlush(): void {
    this.corkedOk = this.writePending();
  }

  /** Inside a cork: writes the pending head and text; false when the socket is full. */
  private writePending(): boolean {
    if (this.head) {
      const [status, contentType, headers] = this.head;
      this.head = undefined;
      this.writeHead(status, contentType, headers);
    }
    if (this.pending.length === 0) return true;
    const text = this.pending;
    this.pending = "";
    this.bytesOut += Buffer.byteLength(text);
    return this.res.write(text);
  }

  /** The socket is full: the promise resolves when uWS says it is writable again (or the client left). */
  private block(): Promise<void> {
    if (!this.writableRegistered) {
      this.writableRegistered = true;
      this.res.onWritable(() => {
        this.wake();
        return true;
      });
    }
    this.blocked ??= new Promise<void>((resolve) => {
      this.onWritableWaiter = resolve;
    });
    return this.blocked;
  }

  private writeHead(status: number, contentType: string, headers: Headers): void {
    this.started = true;
    this.status = status;
    this.res.writeStatus(statusLine(status));
    this.res.writeHeader("content-type", contentType);
    this.res.writeHeader("x-request-id", this.requestId);
    if (this.shape.requestIdHeader) this.res.writeHeader(this.shape.requestIdHeader, this.requestId);
    for (const [k, v] of COMMON_HEADERS) this.res.writeHeader(k, v);
    for (const [k, v] of headers) this.res.writeHeader(k, v);
    if (this.extraHeaders) for (const [k, v] of this.extraHeaders) this.res.writeHeader(k, v);
  }

  private wake(): void {
    const w = this.onWritableWaiter;
    this.onWritableWaiter = undefined;
    this.blocked = undefined;
    if (this.pending.length > 0) this.scheduleFlush();
    w?.();
  }
}

/** An exchange's flush cork callback (made by a function: an anonymous arrow, no `__name` under tsx). */
function corkFlushOf(ex: HttpExchange): () => void {
  return () => ex.corkedFlush();
}

/** The batched flush of an exchange (a module function taking it as argument: no closure per exchange). */
function flushExchange(ex: HttpExchange): void {
  ex.flushBatch();
}

/** Bytes on the wire of a piece of body (UTF-8 for text). */
function byteLength(data: string | Uint8Array): number {
  return typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
}

function tooLarge(limit: number): SpillwayError {
  return new SpillwayError(Code.ResourceExhausted, `The request body is larger than the limit of ${limit} bytes.`, {
    httpStatus: 413,
    reason: "request_too_large",
    retryable: false,
  });
}
