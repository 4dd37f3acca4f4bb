import type { SpillwayError } from "../../../engine/errors.js";
import type { Headers } from "../exchange.js";

/** Request headers a shape reads, by lower-case name ("" when absent). */
export type RequestHeaders = Readonly<Record<string, string>>;

/** An error as a shape writes it before the first byte of a response. */
export interface RenderedError {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers: Headers;
}

/**
 * A wire API shape (OpenAI, Anthropic, …) as the shape-neutral HTTP
 * plumbing sees it: which request headers carry its key and version, what
 * browsers may send (CORS), and how it renders an engine error before the
 * first byte (a status and body) and after it (an in-band SSE frame). The
 * door, the exchange and the route runner know nothing else of a shape.
 */
export interface Shape {
  /** `openai`, `anthropic`: a label for logs and metrics. */
  readonly name: string;
  /** Request headers the shape's routes read; copied before the handler's first await. */
  readonly headers: readonly string[];
  /** Request headers browsers may send (`access-control-allow-headers`). */
  readonly corsHeaders: readonly string[];
  /** A response header of its own that carries the request id too (Anthropic's `request-id`); `x-request-id` is always sent. */
  readonly requestIdHeader?: string;
  /** The gateway key the client presented ("" for none). */
  key(headers: RequestHeaders): string;
  /** Whether a request that matched no route is most likely this shape's (for its 404 body). */
  claims?(url: string, headers: RequestHeaders): boolean;
  /** An error before the first byte: status, body and headers. */
  renderError(err: SpillwayError): RenderedError;
  /** An error after the first byte of an SSE response, as a complete SSE frame. */
  streamError(err: SpillwayError): string;
}
