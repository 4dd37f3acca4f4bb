/**
 * What the raw-handler clients (`upstream-whole.ts`, `upstream-stream.ts`)
 * share: an answer's status and undici's raw headers read like fetch's
 * `Response`, a JSON POST's headers, the 2xx check, each URL split once
 * into undici's origin and path, and the link from the call's abort to the
 * request's.
 */
import { STATUS_CODES } from "node:http";
import { util as undiciUtil } from "undici";
import type { AbortSource } from "../../engine/signals.js";
import { upstreamTraceparentOf } from "../../observability/trace-carrier.js";
import { upstreamError, type UpstreamAnswer, type UpstreamErrorMapper } from "./upstream-errors.js";

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
export abstract class RawUpstreamAnswer implements UpstreamAnswer {
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
export function jsonHeaders(headers: Record<string, string>, signal: AbortSignal | AbortSource): Record<string, string> {
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
export function okOrThrow<T extends UpstreamAnswer & { readonly ok: boolean }>(provider: string, mapError: UpstreamErrorMapper = upstreamError): (res: T) => T | Promise<never> {
  return (res) => (res.ok ? res : mapError(provider, res).then(throwIt));
}

function throwIt(e: unknown): never {
  throw e;
}


const splitUrls = new Map<string, { origin: string; path: string }>();

/** `origin` and `path` of `url`, each URL split once (one per provider route: few). */
export function splitUrl(url: string): { origin: string; path: string } {
  let s = splitUrls.get(url);
  if (!s) {
    const u = new URL(url);
    s = { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
    if (splitUrls.size < 1024) splitUrls.set(url, s);
  }
  return s;
}

/** An abort as undici's dispatcher wants it: from the call's signal or its cheap source, once. */
export class AbortLink {
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

  /** Stops listening; returns the request's abort function if it is still going (to call after settling). */
  release(): ((reason?: Error) => void) | undefined {
    const abort = this.abortFn;
    this.detach();
    return abort;
  }

  /** Stops listening: an abort of the call no longer reaches the request. */
  detach(): void {
    this.abortFn = undefined;
    if (this.listening && this.abort instanceof AbortSignal) {
      this.listening = false;
      this.abort.removeEventListener("abort", this);
    }
  }
}
