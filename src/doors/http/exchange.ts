import { randomUUID } from "node:crypto";
import type { HttpRequest, HttpResponse } from "uWebSockets.js";
import type { StreamSummary } from "../../engine/active-stream.js";
import type { Principal } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { errorBody, httpStatusOf, statusLine } from "./status.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";

/** Headers sent on every response. */
const COMMON_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["access-control-allow-origin", "*"],
  ["access-control-expose-headers", "x-request-id, x-spillway-provider, x-spillway-model, x-spillway-key, retry-after"],
];

/** Response headers as name/value pairs. */
export type Headers = ReadonlyArray<readonly [string, string]>;

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
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  readonly method: string;
  readonly url: string;
  readonly query: string;
  readonly requestId: string;
  readonly contentType: string;
  /** The Content-Type header as sent (a multipart boundary is case-sensitive). */
  readonly rawContentType: string;
  readonly contentLength: number | undefined;
  readonly authorization: string;
  /** Who is calling, once the door has authenticated the request. */
  principal: Principal | undefined;
  /** performance.now() when the request arrived. */
  readonly startedAt = performance.now();
  /** The status sent, once the head is written. */
  status = 0;
  /** Body bytes handed to the socket. */
  bytesOut = 0;
  /** The engine stream's summary, once the stream this request opened has ended. */
  summary: StreamSummary | undefined;
  private readonly controller = new AbortController();
  private onWritableWaiter: (() => void) | undefined;
  private writableRegistered = false;
  /** Status and headers of a started response, until the first flush sends them. */
  private head: [number, string, Headers] | undefined;
  /** Text written but not yet handed to the socket. */
  private pending = "";
  private flushQueued = false;
  /** While the socket is full: resolves when it can take more. */
  private blocked: Promise<void> | undefined;

  constructor(
    private readonly res: HttpResponse,
    req: HttpRequest,
  ) {
    tracePhase(TracePhase.Arrived);
    this.signal = this.controller.signal;
    this.method = req.getMethod();
    this.url = req.getUrl();
    this.query = req.getQuery() ?? "";
    this.requestId = req.getHeader("x-request-id").slice(0, 128) || randomUUID();
    this.rawContentType = req.getHeader("content-type");
    this.contentType = this.rawContentType.toLowerCase();
    const cl = req.getHeader("content-length");
    this.contentLength = cl ? Number(cl) : undefined;
    this.authorization = req.getHeader("authorization");
    res.onAborted(() => {
      this.aborted = true;
      this.controller.abort(new SpillwayError(Code.Canceled, "the client closed the connection"));
      this.wake();
    });
  }

  /** Reads the whole request body, up to `limit` bytes; larger bodies fail with 413 at once. */
  readBody(limit: number): Promise<Buffer> {
    if (this.contentLength !== undefined && this.contentLength > limit) {
      return Promise.reject(tooLarge(limit));
    }
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      let settled = false;
      const onAbort = (): void => {
        if (!settled) {
          settled = true;
          reject(SpillwayError.from(this.signal.reason));
        }
      };
      this.signal.addEventListener("abort", onAbort, { once: true });
      this.res.onData((ab, isLast) => {
        if (settled) return;
        size += ab.byteLength;
        if (size > limit) {
          settled = true;
          this.signal.removeEventListener("abort", onAbort);
          reject(tooLarge(limit));
          return;
        }
        // The ArrayBuffer is only valid during this callback: copy it.
        parts.push(Buffer.from(new Uint8Array(ab)));
        if (isLast) {
          settled = true;
          this.signal.removeEventListener("abort", onAbort);
          resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
        }
      });
    });
  }

  /**
   * Streams the request body chunk by chunk: `onChunk` gets a copy of each
   * chunk; a body over `limit` fails with 413 before the rest is read.
   * Returns a promise that resolves at the end of the body.
   */
  streamBody(limit: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (this.contentLength !== undefined && this.contentLength > limit) {
      return Promise.reject(tooLarge(limit));
    }
    return new Promise((resolve, reject) => {
      let size = 0;
      let settled = false;
      this.signal.addEventListener("abort", () => settled || ((settled = true), reject(SpillwayError.from(this.signal.reason))), {
        once: true,
      });
      this.res.onData((ab, isLast) => {
        if (settled) return;
        size += ab.byteLength;
        if (size > limit) {
          settled = true;
          reject(tooLarge(limit));
          return;
        }
        try {
          onChunk(Buffer.from(new Uint8Array(ab)));
        } catch (e) {
          settled = true;
          reject(SpillwayError.from(e));
          return;
        }
        if (isLast) {
          settled = true;
          resolve();
        }
      });
    });
  }

  /** The engine call options for this request: its abort signal and caller. */
  callOptions(extra: { fallbacks?: readonly string[] | undefined } = {}): {
    signal: AbortSignal;
    principal: Principal | undefined;
    fallbacks?: readonly string[] | undefined;
    onStreamEnd: (s: StreamSummary) => void;
  } {
    return { signal: this.signal, principal: this.principal, onStreamEnd: (s) => (this.summary = s), ...extra };
  }

  /** Sends a complete response. No-op once the client is gone or a response was sent. */
  send(status: number, contentType: string, body: string | Uint8Array, headers: Headers = [], close = false): void {
    if (this.aborted || this.finished) return;
    this.finished = true;
    this.bytesOut += body.length;
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
   * Sends an error as the OpenAI error body with its status. When the
   * response has already started (a stream), the caller must use an in-band
   * error instead; this then only ends the response.
   */
  error(reason: unknown): void {
    const err = SpillwayError.from(reason);
    if (this.started) {
      this.end();
      return;
    }
    const status = httpStatusOf(err);
    const headers: Array<readonly [string, string]> = [];
    if (err.retryAfterMs !== undefined) headers.push(["retry-after", String(Math.ceil(err.retryAfterMs / 1000))]);
    // A body we refused to read must not be read: close the connection instead.
    this.send(status, "application/json", errorBody(err), headers, status === 413);
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
    this.bytesOut += data.length;
    if (typeof data === "string") {
      this.pending += data;
      if (this.blocked) return this.blocked;
      this.scheduleFlush();
      return undefined;
    }
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
    this.res.cork(() => {
      this.writePending();
      this.res.end(data);
    });
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
    process.nextTick(this.flush);
  }

  /** Hands the batched head and text to the socket in one cork (one syscall). */
  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.aborted || this.finished || this.blocked) return;
    if (!this.head && this.pending.length === 0) return;
    let ok = true;
    this.res.cork(() => {
      ok = this.writePending();
    });
    tracePhase(TracePhase.FirstFlush);
    if (!ok) void this.block();
  };

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
    for (const [k, v] of COMMON_HEADERS) this.res.writeHeader(k, v);
    for (const [k, v] of headers) this.res.writeHeader(k, v);
  }

  private wake(): void {
    const w = this.onWritableWaiter;
    this.onWritableWaiter = undefined;
    this.blocked = undefined;
    if (this.pending.length > 0) this.scheduleFlush();
    w?.();
  }
}

function tooLarge(limit: number): SpillwayError {
  return new SpillwayError(Code.ResourceExhausted, `The request body is larger than the limit of ${limit} bytes.`, {
    httpStatus: 413,
    openAiCode: "request_too_large",
    type: "invalid_request_error",
    retryable: false,
  });
}
