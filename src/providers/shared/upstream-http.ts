import { STATUS_CODES } from "node:http";
import { Readable } from "node:stream";
import { request, util as undiciUtil, type Dispatcher } from "undici";
import { dispatcherFor } from "./upstream-transport.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { gatewayOutOfDescriptors, outOfDescriptors } from "../../engine/limits/out-of-descriptors.js";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import type { AbortSource } from "../../engine/signals.js";
import type { PushBody } from "./push-queue.js";
import { upstreamTraceparent, upstreamTraceparentOf } from "../../observability/trace-carrier.js";

/** Most bytes of an upstream error body that are read. */
const MAX_ERROR_BODY = 64 * 1024;

/** Most bytes of a whole (non-streamed) 2xx answer that are gathered: past it the answer is an error, not memory. */
const MAX_WHOLE_ANSWER = 64 * 1024 * 1024;

/** Most characters of an error body that is not JSON kept as the error's message. */
const MAX_RAW_MESSAGE = 2000;

/** What an upstream request sends. */
export interface UpstreamRequest {
  readonly method?: "GET" | "POST";
  readonly headers: Readonly<Record<string, string>>;
  /** A whole body, or one streamed as it is produced (chunked). */
  readonly body?: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
  readonly signal: AbortSignal;
}

/** What {@link upstreamError} reads of an answer: both {@link UpstreamResponse} and {@link WholeUpstreamResponse} are one. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/**
 * An upstream's answer: the subset of fetch's `Response` the providers use,
 * over undici's `request` (Node streams, no WHATWG stream layer: the
 * benchmark showed fetch among the largest per-stream costs).
 */
export class UpstreamResponse {
  constructor(
    private readonly data: Dispatcher.ResponseData,
    private readonly provider = "upstream",
  ) {}

  get status(): number {
    return this.data.statusCode;
  }

  get ok(): boolean {
    return this.data.statusCode >= 200 && this.data.statusCode < 300;
  }

  get statusText(): string {
    return STATUS_CODES[this.data.statusCode] ?? "";
  }

  /** Response headers, read like fetch's `Headers` (`get` is case-insensitive). */
  readonly headers = {
    get: (name: string): string | null => {
      const v = this.data.headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
    },
  };

  /** The body, read as it arrives (backpressure reaches the upstream socket). */
  get body(): AsyncIterable<Uint8Array> {
    return this.data.body;
  }

  /** The same body as a Node Readable, for readers that take its events directly ({@link SsePushStream}). */
  get stream(): Readable {
    return this.data.body;
  }

  /** The whole body as UTF-8 text (a leading byte order mark dropped); past {@link MAX_WHOLE_ANSWER} bytes, a 502 and the request closed. */
  async text(): Promise<string> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const b of this.data.body as AsyncIterable<Buffer>) {
      size += b.length;
      if (size > MAX_WHOLE_ANSWER) {
        this.data.body.destroy();
        throw answerTooLarge(this.provider);
      }
      parts.push(b);
    }
    return UTF8.decode(parts.length === 1 ? parts[0] : Buffer.concat(parts, size));
  }

  /** The body's first `max` bytes as UTF-8 text; the rest is not read (the request is closed). */
  async textUpTo(max: number): Promise<string> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const b of this.data.body as AsyncIterable<Buffer>) {
      parts.push(b);
      size += b.length;
      if (size >= max) break;
    }
    this.data.body.destroy();
    return Buffer.concat(parts, size).toString("utf8", 0, Math.min(size, max));
  }

  /** The whole body parsed as JSON (see {@link text} for its bound); a SyntaxError for a body that is not. */
  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  /** Discards the rest of the body, freeing the connection. */
  discard(): void {
    this.data.body.destroy();
  }
}

/**
 * Sends one request to an upstream with the call's AbortSignal, so that
 * aborting the call aborts the request (and its body) at once. Connection
 * failures become `Unavailable` (HTTP 502); the status is left to the caller.
 */
export async function upstreamRequest(provider: string, url: string, init: UpstreamRequest): Promise<UpstreamResponse> {
  const body = init.body === undefined || typeof init.body === "string" || init.body instanceof Uint8Array ? init.body : Readable.from(init.body);
  try {
    publishPhase(Phase.UpstreamSent);
    // Tracing on: the attempt's span continues upstream (W3C trace context).
    const traceparent = upstreamTraceparent(init.signal);
    const headers = traceparent ? { ...init.headers, traceparent } : init.headers;
    const data = await request(url, { method: init.method ?? (body === undefined ? "GET" : "POST"), headers, body: body ?? null, signal: init.signal, dispatcher: dispatcherFor(provider) });
    publishPhase(Phase.UpstreamHeaders);
    return new UpstreamResponse(data, provider);
  } catch (e) {
    throw connectionError(provider, e, init.signal);
  }
}

/**
 * POSTs JSON to an upstream with the call's AbortSignal. Non-2xx answers
 * become the matching error, with the upstream's own message.
 */
export async function postJson(
  provider: string,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<UpstreamResponse> {
  const res = await upstreamRequest(provider, url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await upstreamError(provider, res);
  return res;
}

/** Reads a whole (non-streamed) answer's JSON body; a body that is not JSON is a 502. */
export async function upstreamJson(provider: string, res: { json(): unknown }): Promise<unknown> {
  try {
    return await res.json();
  } catch (e) {
    throw e instanceof SpillwayError ? e : notJson(provider, e);
  }
}

/** {@link upstreamJson} for an answer already read whole ({@link WholeUpstreamResponse}): parsed at once, the same error. */
export function upstreamJsonSync(provider: string, res: WholeUpstreamResponse): unknown {
  try {
    return res.json();
  } catch (e) {
    throw notJson(provider, e);
  }
}

function notJson(provider: string, e: unknown): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream's answer is not JSON (${(e as Error).message})`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
  });
}

/** GETs JSON from an upstream (model lists); same error handling as {@link postJson}. */
export async function getJson(provider: string, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<unknown> {
  const res = await upstreamRequest(provider, url, { method: "GET", headers, signal });
  if (!res.ok) throw await upstreamError(provider, res);
  return await res.json();
}

export { gatewayOutOfDescriptors, outOfDescriptors } from "../../engine/limits/out-of-descriptors.js";

/** Maps a fetch failure: the call's abort reason when aborted (a signal, or an {@link AbortSource}), else `Unavailable`. */
export function connectionError(provider: string, e: unknown, signal: AbortSignal | AbortSource): SpillwayError {
  if (signal.aborted) return SpillwayError.from(signal instanceof AbortSignal ? signal.reason : signal.abortReason);
  if (e instanceof SpillwayError) return e;
  if (outOfDescriptors(e)) return gatewayOutOfDescriptors(provider);
  const detail = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
  return new SpillwayError(Code.Unavailable, `${provider}: upstream unreachable (${detail})`, {
    httpStatus: 502,
    reason: "upstream_unreachable",
    fromUpstream: true,
    cause: e,
  });
}

/** Maps an upstream's error status to the gRPC-style code the engine uses. */
export function codeForUpstreamStatus(status: number): Code {
  if (status === 400 || status === 422) return Code.InvalidArgument;
  if (status === 401) return Code.Unauthenticated;
  if (status === 403) return Code.PermissionDenied;
  if (status === 404) return Code.NotFound;
  if (status === 408 || status === 504) return Code.DeadlineExceeded;
  if (status === 413) return Code.ResourceExhausted;
  if (status === 429) return Code.ResourceExhausted;
  return Code.Unavailable;
}

/** Parses a `Retry-After` header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** Decodes a whole answer's bytes (a leading byte order mark dropped, as undici's `text()`). */
const UTF8 = new TextDecoder();

/** The error for a whole answer longer than {@link MAX_WHOLE_ANSWER}: the upstream's fault, a 502. */
export function answerTooLarge(provider: string): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream's answer is larger than ${MAX_WHOLE_ANSWER / (1024 * 1024)} MiB, the most the gateway reads`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
  });
}

/**
 * A non-2xx answer's body as text, at most {@link MAX_ERROR_BODY} bytes of
 * it read (an upstream or proxy that sends megabytes, or never ends its
 * error body, costs no more). Best effort: "" when the body fails, for the
 * status alone still says what happened.
 */
export async function errorBodyText(res: UpstreamAnswer): Promise<string> {
  try {
    if (res instanceof UpstreamResponse) return await res.textUpTo(MAX_ERROR_BODY);
    return (await res.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    return "";
  }
}

/**
 * The message of an error body that is not the vendor's JSON (a proxy's
 * HTML page, plain text): its text trimmed to {@link MAX_RAW_MESSAGE}
 * characters, or the status text when empty.
 */
export function rawErrorMessage(text: string, statusText: string): string {
  const t = text.trim();
  if (!t) return statusText;
  return t.length > MAX_RAW_MESSAGE ? `${t.slice(0, MAX_RAW_MESSAGE)}…` : t;
}

/**
 * Turns an upstream's non-2xx response into a SpillwayError carrying the
 * upstream's message. 4xx statuses pass through (the client sent something
 * the upstream refused); 5xx become 502 (`upstream_error`), retryable.
 */
export async function upstreamError(provider: string, res: UpstreamAnswer): Promise<SpillwayError> {
  const text = await errorBodyText(res);
  let message = rawErrorMessage(text, res.statusText);
  let param: string | undefined;
  let code: string | undefined;
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } };
    const err = j.error;
    if (err && typeof err === "object") {
      if (typeof err.message === "string") message = err.message;
      if (typeof err.param === "string") param = err.param;
      if (typeof err.code === "string") code = err.code;
    }
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  const is5xx = res.status >= 500;
  return new SpillwayError(codeForUpstreamStatus(res.status), `${provider}: ${message}`, {
    httpStatus: is5xx ? 502 : res.status,
    param,
    reason: is5xx ? "upstream_error" : code,
    retryable: is5xx || res.status === 429 || res.status === 408,
    retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
    fromUpstream: true,
  });
}

/**
 * The error for an upstream stream that failed while being read: the call's
 * abort reason when it was aborted, a SpillwayError as it is, anything else
 * (a reset socket, a body that ended in the middle of a frame) a retryable
 * `Unavailable` that says the stream broke off.
 */
export function streamReadError(provider: string, e: unknown, signal: AbortSignal | AbortSource): SpillwayError {
  if (signal.aborted) return SpillwayError.from(signal instanceof AbortSignal ? signal.reason : signal.abortReason);
  if (e instanceof SpillwayError) return e;
  return new SpillwayError(Code.Unavailable, `${provider}: the upstream stream broke off (${(e as Error).message})`, {
    httpStatus: 502,
    reason: "upstream_error",
    fromUpstream: true,
    cause: e,
  });
}

/**
 * The error for an upstream stream that ended without its end marker
 * (`[DONE]`, `message_stop`, `response.completed`): a truncation, never to
 * be passed off as a complete answer. `what` says what was missing.
 */
export function upstreamTruncated(provider: string, what: string): SpillwayError {
  return new SpillwayError(Code.DataLoss, `${provider}: the upstream closed the stream before ${what}`, {
    httpStatus: 502,
    reason: "upstream_truncated",
    fromUpstream: true,
  });
}

/** undici's raw response headers, read like fetch's `Headers` (`get` is case-insensitive, repeated headers joined). */
class RawHeaders {
  private parsed: Record<string, string | string[] | undefined> | undefined;

  constructor(private readonly raw: Buffer[]) {}

  get(name: string): string | null {
    this.parsed ??= undiciUtil.parseHeaders(this.raw) as Record<string, string | string[] | undefined>;
    const v = this.parsed[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
  }
}

/** Status and raw headers of an answer read on undici's dispatcher, read like fetch's `Response`. */
abstract class RawUpstreamAnswer implements UpstreamAnswer {
  private parsedHeaders: RawHeaders | undefined;

  constructor(
    readonly status: number,
    private readonly rawHeaders: Buffer[],
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get statusText(): string {
    return STATUS_CODES[this.status] ?? "";
  }

  /** Response headers, read like fetch's `Headers` (`get` is case-insensitive); parsed when first read. */
  get headers(): RawHeaders {
    return (this.parsedHeaders ??= new RawHeaders(this.rawHeaders));
  }

  abstract text(): Promise<string>;
}

/** A JSON POST's headers: `content-type`, the caller's, and the call's `traceparent` when traced. */
function jsonHeaders(headers: Record<string, string>, signal: AbortSignal | AbortSource): Record<string, string> {
  const h: Record<string, string> = Object.assign({ "content-type": "application/json" }, headers);
  const traceparent = upstreamTraceparentOf(signal);
  if (traceparent) h["traceparent"] = traceparent;
  return h;
}

/**
 * The answer as it is when 2xx, else the upstream's error mapped
 * ({@link upstreamError}). A 2xx answer is returned as it is, not through an
 * async function: a promise returned from a `then` callback costs two more
 * microtask turns to adopt.
 */
function okOrThrow<T extends UpstreamAnswer & { readonly ok: boolean }>(provider: string, mapError: UpstreamErrorMapper = upstreamError): (res: T) => T | Promise<never> {
  return (res) => (res.ok ? res : mapError(provider, res).then(throwIt));
}

/** Maps an upstream's non-2xx answer to its error ({@link upstreamError}, or a provider's own, e.g. Anthropic's error object). */
export type UpstreamErrorMapper = (provider: string, res: UpstreamAnswer) => Promise<SpillwayError>;

function throwIt(e: unknown): never {
  throw e;
}

/**
 * A whole answer, read to its end by {@link postJsonWhole}: status, headers
 * (parsed when first read) and the body's bytes.
 */
export class WholeUpstreamResponse extends RawUpstreamAnswer {
  constructor(
    status: number,
    rawHeaders: Buffer[],
    /** The whole body (empty for none). */
    readonly bytes: Buffer,
  ) {
    super(status, rawHeaders);
  }

  /** The body as UTF-8 text, a leading byte order mark skipped (as undici's `text()`). */
  textSync(): string {
    const b = this.bytes;
    const start = b.length > 2 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
    return b.toString("utf8", start);
  }

  text(): Promise<string> {
    return Promise.resolve(this.textSync());
  }

  /** The body parsed as JSON; throws a SyntaxError for a body that is not. */
  json(): unknown {
    return JSON.parse(this.textSync());
  }
}

/**
 * undici's raw handler for {@link postJsonWhole}: the body's pieces are
 * gathered as the socket hands them over, with no Readable, no
 * AsyncResource and no promise per response (undici's `request` makes all
 * three). It is the abort listener on the call's signal itself.
 */
class WholeHandler implements Dispatcher.DispatchHandler {
  private status = 0;
  private readonly signal: AbortSignal | undefined;
  private readonly source: AbortSource | undefined;
  private rawHeaders: Buffer[] = [];
  private readonly parts: Buffer[] = [];
  private size = 0;
  private abortFn: ((reason?: Error) => void) | undefined;
  private listening = false;
  /** Resolved or rejected (a cut error body is answered before undici reports the abort). */
  private settled = false;

  constructor(
    private readonly provider: string,
    abort: AbortSignal | AbortSource,
    private readonly resolve: (r: WholeUpstreamResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    if (abort instanceof AbortSignal) this.signal = abort;
    else this.source = abort;
  }

  onConnect(abort: (reason?: Error) => void): void {
    const reason = this.abortedWith();
    if (reason !== undefined) {
      abort(reason as Error);
      return;
    }
    this.abortFn = abort;
    if (this.listening) return;
    this.listening = true;
    // A source's callback cannot be removed: once the answer is in, `abortFn` is gone and it does nothing.
    if (this.signal) this.signal.addEventListener("abort", this);
    else this.source!.onAbort((why) => this.abortFn?.(why as Error));
  }

  /** The abort's reason, or undefined while not aborted. */
  private abortedWith(): unknown {
    if (this.signal) return this.signal.aborted ? (this.signal.reason ?? new Error("aborted")) : undefined;
    return this.source!.aborted ? (this.source!.abortReason ?? new Error("aborted")) : undefined;
  }

  handleEvent(): void {
    this.abortFn?.(this.signal!.reason as Error);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx: informational, the answer's own head follows.
    if (statusCode < 200) return true;
    publishPhase(Phase.UpstreamHeaders);
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return true;
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size >= MAX_ERROR_BODY && (this.status < 200 || this.status >= 300)) this.cutErrorBody();
    else if (this.size > MAX_WHOLE_ANSWER) this.tooLarge();
    return true;
  }

  /** A 2xx answer past {@link MAX_WHOLE_ANSWER}: a 502, what was gathered dropped, the request closed. */
  private tooLarge(): void {
    const abort = this.abortFn;
    this.settled = true;
    this.detach();
    this.parts.length = 0;
    this.reject(answerTooLarge(this.provider));
    abort?.(new Error("the upstream's answer is longer than the gateway reads"));
  }

  /** A non-2xx answer past {@link MAX_ERROR_BODY}: answered with what is in, the rest not read (the request is closed). */
  private cutErrorBody(): void {
    const abort = this.abortFn;
    this.onComplete();
    abort?.(new Error("the upstream's error body is longer than the gateway reads"));
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    this.detach();
    let body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    if (body.length > MAX_ERROR_BODY && (this.status < 200 || this.status >= 300)) body = body.subarray(0, MAX_ERROR_BODY);
    this.resolve(new WholeUpstreamResponse(this.status, this.rawHeaders, body));
  }

  onError(err: Error): void {
    this.detach();
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }

  private detach(): void {
    this.abortFn = undefined;
    if (this.listening && this.signal) {
      this.listening = false;
      this.signal.removeEventListener("abort", this);
    }
  }
}

/** `origin` and `path` of each URL sent to (one per provider route: few). */
const splitUrls = new Map<string, { origin: string; path: string }>();
function splitUrl(url: string): { origin: string; path: string } {
  let s = splitUrls.get(url);
  if (!s) {
    const u = new URL(url);
    s = { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
    if (splitUrls.size < 1024) splitUrls.set(url, s);
  }
  return s;
}

/**
 * POSTs JSON for a whole (non-streamed) answer and reads it to its end, as
 * {@link postJson} then `json()` would, on undici's dispatcher directly
 * (see {@link WholeHandler}): the same request on the wire, the same
 * errors — connection failures `Unavailable` (502), the call's abort reason
 * when its signal aborts (which aborts the request at once), non-2xx
 * answers the matching error with the upstream's message. `body` is the
 * JSON text. `signal` is the call's AbortSignal or, cheaper, its
 * {@link AbortSource} (`ProviderContext.abortSource`: no signal is made).
 */
export function postJsonWhole(provider: string, url: string, body: string, headers: Record<string, string>, signal: AbortSignal | AbortSource): Promise<WholeUpstreamResponse> {
  const { origin, path } = splitUrl(url);
  publishPhase(Phase.UpstreamSent);
  const h = jsonHeaders(headers, signal);
  return new Promise<WholeUpstreamResponse>((resolve, reject) => {
    if (signal.aborted) {
      reject(SpillwayError.from(signal instanceof AbortSignal ? signal.reason : signal.abortReason));
      return;
    }
    dispatcherFor(provider).dispatch({ origin, path, method: "POST", headers: h, body }, new WholeHandler(provider, signal, resolve, reject));
  }).then(okOrThrow(provider), (e: unknown) => {
    throw connectionError(provider, e, signal);
  });
}

/** An abort as undici's dispatcher wants it: from the call's signal or its cheap source, once. */
class AbortLink {
  private abortFn: ((reason?: Error) => void) | undefined;
  private listening = false;

  constructor(private readonly abort: AbortSignal | AbortSource) {}

  /** The abort's reason, or undefined while not aborted. */
  reason(): unknown {
    const a = this.abort;
    if (!a.aborted) return undefined;
    return (a instanceof AbortSignal ? a.reason : a.abortReason) ?? new Error("aborted");
  }

  /** undici's `onConnect`: aborts at once when the call already has, else when it does. */
  connect(abort: (reason?: Error) => void): void {
    const why = this.reason();
    if (why !== undefined) {
      abort(why as Error);
      return;
    }
    this.abortFn = abort;
    if (this.listening) return;
    this.listening = true;
    // A source's callback cannot be removed: once detached, `abortFn` is gone and it does nothing.
    if (this.abort instanceof AbortSignal) this.abort.addEventListener("abort", this);
    else this.abort.onAbort((r) => this.abortFn?.(r as Error));
  }

  handleEvent(): void {
    this.abortFn?.((this.abort as AbortSignal).reason as Error);
  }

  /** Aborts the request now (the consumer left), if it is still going. */
  now(err: Error): void {
    this.abortFn?.(err);
  }

  detach(): void {
    this.abortFn = undefined;
    if (this.listening && this.abort instanceof AbortSignal) {
      this.listening = false;
      this.abort.removeEventListener("abort", this);
    }
  }
}

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
