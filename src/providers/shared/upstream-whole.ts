/**
 * Whole (non-streamed) upstream answers read on undici's dispatcher with a
 * raw handler: {@link postJsonWhole}.
 */
import { Phase, publishPhase } from "../../engine/phase-channel.js";
import { SpillwayError } from "../../engine/errors.js";
import type { AbortSource } from "../../engine/signals.js";
import type { Dispatcher } from "undici";
import { AbortLink, jsonHeaders, okOrThrow, RawUpstreamAnswer, splitUrl } from "./upstream-answer.js";
import { answerNotJson, answerTooLarge, connectionError, MAX_ERROR_BODY, MAX_WHOLE_ANSWER } from "./upstream-errors.js";
import { dispatcherFor } from "./upstream-transport.js";

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
 * three); the call's abort reaches the request through an {@link AbortLink}.
 */
class WholeHandler implements Dispatcher.DispatchHandler {
  private status = 0;
  private readonly link: AbortLink;
  private rawHeaders: Buffer[] = [];
  private readonly parts: Buffer[] = [];
  private size = 0;
  /** Resolved or rejected (a cut error body is answered before undici reports the abort). */
  private settled = false;

  constructor(
    private readonly provider: string,
    abort: AbortSignal | AbortSource,
    private readonly resolve: (r: WholeUpstreamResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.link = new AbortLink(abort);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.link.connect(abort);
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
    const abort = this.link.release();
    this.settled = true;
    this.parts.length = 0;
    this.reject(answerTooLarge(this.provider));
    abort?.(new Error("the upstream's answer is longer than the gateway reads"));
  }

  /** A non-2xx answer past {@link MAX_ERROR_BODY}: answered with what is in, the rest not read (the request is closed). */
  private cutErrorBody(): void {
    const abort = this.link.release();
    this.onComplete();
    abort?.(new Error("the upstream's error body is longer than the gateway reads"));
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    this.link.detach();
    let body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    if (body.length > MAX_ERROR_BODY && (this.status < 200 || this.status >= 300)) body = body.subarray(0, MAX_ERROR_BODY);
    this.resolve(new WholeUpstreamResponse(this.status, this.rawHeaders, body));
  }

  onError(err: Error): void {
    this.link.detach();
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
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


/** `upstreamJson` (upstream-http.ts) for an answer already read whole ({@link WholeUpstreamResponse}): parsed at once, the same error. */
export function upstreamJsonSync(provider: string, res: WholeUpstreamResponse): unknown {
  try {
    return res.json();
  } catch (e) {
    throw answerNotJson(provider, e);
  }
}

