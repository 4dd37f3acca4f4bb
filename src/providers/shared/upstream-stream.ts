/**
 * Streamed upstream answers read on undici's dispatcher with a raw handler,
 * handed to the push readers without a Readable: {@link postJsonStream}.
 */
import type { Dispatcher } from "undici";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import { SpillwayError } from "../../engine/errors.js";
import type { AbortSource } from "../../engine/signals.js";
import type { PushBody } from "./push-queue.js";
import { AbortLink, jsonHeaders, okOrThrow, RawUpstreamAnswer, splitUrl } from "./upstream-answer.js";
import { connectionError, MAX_ERROR_BODY, upstreamError, type UpstreamErrorMapper } from "./upstream-errors.js";
import { dispatcherFor } from "./upstream-transport.js";
import { WholeUpstreamResponse } from "./upstream-whole.js";

/**
 * A streamed answer's body straight from undici's dispatcher (a raw
 * handler): the {@link PushBody} the push reader takes, with no Readable,
 * no AsyncResource and no stream machinery between the socket read and the
 * SSE parser — each read is handed to the `data` listener in the same call.
 * Reads that come before the listener is attached (in the turn of the
 * answer's head) wait and are delivered, in order, once it is. `pause()`
 * stops the socket (undici's backpressure), `destroy()` aborts the request.
 */
class DispatchBody implements PushBody, Dispatcher.DispatchHandler {
  private status = 0;
  private rawHeaders: Buffer[] = [];
  private onDataFn: ((b: Buffer) => void) | undefined;
  private onEndFn: (() => void) | undefined;
  private onErrorFn: ((e: unknown) => void) | undefined;
  private closeFns: Array<() => void> | undefined;
  /** Reads (and the end, as `null`) that came before the `data` listener. */
  private early: Array<Buffer | null> | undefined = [];
  private earlyError: unknown;
  private paused = false;
  private resumeFn: (() => void) | undefined;
  private over = false;
  private destroyed = false;
  /** Settles once the head is in: with this body (2xx), or its error. */
  private head: { resolve: (r: StreamedUpstreamResponse) => void; reject: (e: unknown) => void } | undefined;
  /** A non-2xx answer's body, gathered for its error (at most {@link MAX_ERROR_BODY} bytes of it). */
  private errorParts: Buffer[] | undefined;
  private errorSize = 0;

  constructor(
    private readonly link: AbortLink,
    resolve: (r: StreamedUpstreamResponse) => void,
    reject: (e: unknown) => void,
  ) {
    this.head = { resolve, reject };
  }

  // --- undici's side
  onConnect(abort: (reason?: Error) => void): void {
    this.link.connect(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    publishPhase(Phase.UpstreamHeaders);
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    this.resumeFn = resume;
    if (statusCode < 200 || statusCode >= 300) {
      this.errorParts = [];
      return true;
    }
    const h = this.head!;
    this.head = undefined;
    h.resolve(new StreamedUpstreamResponse(statusCode, rawHeaders, this));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.errorParts) {
      this.errorParts.push(chunk);
      this.errorSize += chunk.length;
      if (this.errorSize >= MAX_ERROR_BODY) this.cutErrorBody();
      return true;
    }
    if (this.destroyed || this.over) return true;
    const fn = this.onDataFn;
    if (fn && !this.early) fn(chunk);
    else this.early!.push(chunk);
    return !this.paused;
  }

  onComplete(): void {
    this.link.detach();
    if (this.errorParts) {
      const res = new WholeUpstreamResponse(this.status, this.rawHeaders, Buffer.concat(this.errorParts));
      this.errorParts = undefined;
      this.finishHead(res);
      return;
    }
    if (this.early || !this.onEndFn) {
      (this.early ??= []).push(null);
      return;
    }
    this.over = true;
    if (!this.destroyed) this.onEndFn();
    this.closed();
  }

  onError(err: Error): void {
    this.link.detach();
    if (this.errorParts && !this.link.reason()) {
      // A non-2xx answer whose body broke off: the status still says what happened (as upstreamError's best-effort read).
      const res = new WholeUpstreamResponse(this.status, this.rawHeaders, Buffer.concat(this.errorParts));
      this.errorParts = undefined;
      this.finishHead(res);
      return;
    }
    const h = this.head;
    if (h) {
      this.head = undefined;
      h.reject(err);
      this.over = true;
      this.closed();
      return;
    }
    if (this.over) return;
    if (this.early || !this.onErrorFn) {
      this.earlyError = err;
      (this.early ??= []).push(null);
      return;
    }
    this.over = true;
    if (!this.destroyed) this.onErrorFn(err);
    this.closed();
  }

  /** A non-2xx answer past {@link MAX_ERROR_BODY}: its error from what is in; the rest is not read (the request is closed). */
  private cutErrorBody(): void {
    const res = new WholeUpstreamResponse(this.status, this.rawHeaders, Buffer.concat(this.errorParts!, this.errorSize).subarray(0, MAX_ERROR_BODY));
    this.errorParts = undefined;
    this.finishHead(res);
    this.link.now(new Error("the upstream's error body is longer than the gateway reads"));
  }

  /** A non-2xx answer: read to its end, then the error with the upstream's message. */
  private finishHead(res: WholeUpstreamResponse): void {
    const h = this.head!;
    this.head = undefined;
    this.over = true;
    this.closed();
    h.resolve(new StreamedUpstreamResponse(res.status, this.rawHeaders, this, res));
  }

  // --- the push reader's side
  on(event: string, fn: (...args: never[]) => void): this {
    if (event === "data") {
      this.onDataFn = fn as (b: Buffer) => void;
      // What came before the listener: delivered after this turn's other listeners are attached.
      process.nextTick(flushEarlyOf, this);
    } else if (event === "end") this.onEndFn = fn;
    else if (event === "error") this.onErrorFn = fn as (e: unknown) => void;
    else if (event === "close") (this.closeFns ??= []).push(fn);
    return this;
  }

  once(event: string, fn: (...args: never[]) => void): this {
    return this.on(event, fn);
  }

  /** Delivers what came before the `data` listener (from `process.nextTick`, see {@link flushEarlyOf}). */
  flushEarly(): void {
    const early = this.early;
    if (!early) return;
    for (let i = 0; i < early.length; i++) {
      const b = early[i]!;
      if (this.destroyed) break;
      if (b !== null) {
        this.onDataFn?.(b);
        continue;
      }
      // The end (or the failure) came before the listener.
      this.early = undefined;
      this.over = true;
      if (this.earlyError !== undefined) this.onErrorFn?.(this.earlyError);
      else this.onEndFn?.();
      this.closed();
      return;
    }
    this.early = undefined;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.resumeFn?.();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (!this.over) {
      this.over = true;
      this.link.now(new Error("the upstream body was closed by its reader"));
      this.closed();
    }
    return this;
  }

  private closed(): void {
    const fns = this.closeFns;
    this.closeFns = undefined;
    if (fns) for (const f of fns) f();
  }
}

/** `process.nextTick`'s callback for {@link DispatchBody.flushEarly} (a module function: no closure per response). */
function flushEarlyOf(body: DispatchBody): void {
  body.flushEarly();
}

/**
 * A streamed answer from {@link postJsonStream}: status, headers and the
 * body as a {@link PushBody} for the push reader.
 */
export class StreamedUpstreamResponse extends RawUpstreamAnswer {
  constructor(
    status: number,
    rawHeaders: Buffer[],
    /** The body, read as it arrives. */
    readonly body: PushBody,
    /** A non-2xx answer's whole body. */
    private readonly whole?: WholeUpstreamResponse,
  ) {
    super(status, rawHeaders);
  }

  text(): Promise<string> {
    return Promise.resolve(this.whole ? this.whole.textSync() : "");
  }
}

/**
 * POSTs JSON for a streamed answer, as {@link postJson} does, on undici's
 * dispatcher with a raw handler (see {@link DispatchBody}): the same request
 * on the wire and the same errors (connection failures `Unavailable`, the
 * call's abort reason, non-2xx answers the matching error with the
 * upstream's message, or `mapError`'s mapping of it). Resolves once a 2xx
 * head is in. `signal`: the call's AbortSignal or, cheaper, its
 * {@link AbortSource}. Every streamed JSON POST (OpenAI chat and Responses,
 * Anthropic messages) reads its body this way: in the Node floor's A/B
 * (load/floor-variants.ts) undici's raw handler cost 10–20% less CPU per
 * stream (3–13% per paced chunk) than `request()` and its Readable.
 */
export function postJsonStream(
  provider: string,
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal | AbortSource,
  mapError: UpstreamErrorMapper = upstreamError,
): Promise<StreamedUpstreamResponse> {
  const { origin, path } = splitUrl(url);
  publishPhase(Phase.UpstreamSent);
  const h = jsonHeaders(headers, signal);
  const link = new AbortLink(signal);
  return new Promise<StreamedUpstreamResponse>((resolve, reject) => {
    const why = link.reason();
    if (why !== undefined) {
      reject(SpillwayError.from(why));
      return;
    }
    dispatcherFor(provider).dispatch({ origin, path, method: "POST", headers: h, body }, new DispatchBody(link, resolve, reject));
  }).then(okOrThrow(provider, mapError), (e: unknown) => {
    throw connectionError(provider, e, signal);
  });
}

