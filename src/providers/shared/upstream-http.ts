/**
 * Upstream HTTP calls on undici's `request`: {@link upstreamRequest} (any
 * method, a streamed or whole body) and the JSON helpers over it. The
 * cheaper raw-handler clients are `upstream-whole.ts` (whole JSON answers)
 * and `upstream-stream.ts` (streamed ones); failures map through
 * `upstream-errors.ts`.
 */
import { STATUS_CODES } from "node:http";
import { Readable } from "node:stream";
import { request, type Dispatcher } from "undici";
import { SpillwayError } from "../../engine/errors.js";
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import { upstreamTraceparent } from "../../observability/trace-carrier.js";
import { answerNotJson, answerTooLarge, connectionError, MAX_WHOLE_ANSWER, upstreamError } from "./upstream-errors.js";
import { dispatcherFor } from "./upstream-transport.js";

/** What an upstream request sends. */
export interface UpstreamRequest {
  readonly method?: "GET" | "POST";
  readonly headers: Readonly<Record<string, string>>;
  /** A whole body, or one streamed as it is produced (chunked). */
  readonly body?: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
  readonly signal: AbortSignal;
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
    throw e instanceof SpillwayError ? e : answerNotJson(provider, e);
  }
}


/** GETs JSON from an upstream (model lists); same error handling as {@link postJson}. */
export async function getJson(provider: string, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<unknown> {
  const res = await upstreamRequest(provider, url, { method: "GET", headers, signal });
  if (!res.ok) throw await upstreamError(provider, res);
  return await res.json();
}


/** Decodes a whole answer's bytes (a leading byte order mark dropped, as undici's `text()`). */
const UTF8 = new TextDecoder();

