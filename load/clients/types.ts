/** What every load client (SSE, JSON, gRPC, WebSocket) offers the load generator. */

/** How one stream (or one whole request) went. */
export interface Outcome {
  readonly ok: boolean;
  /** From the scheduled start to the first content chunk (whole response for JSON), ms. */
  readonly ttftMs: number | undefined;
  /** Content chunks received. */
  readonly chunks: number;
  /** Why it failed. */
  readonly error?: string;
  /**
   * The gateway refused it as over capacity (HTTP 503 with Retry-After, gRPC
   * UNAVAILABLE with the gateway's retry-after trailer, a realtime `error`
   * event with code `server_overloaded`): counted apart from failures.
   */
  readonly refused?: boolean;
  /** When refused: from the request's actual send (realtime: its `response.create`) to the refusal, ms. */
  readonly refusalMs?: number;
}

/** A stream held open after its first chunk (memory measurements). */
export interface Held {
  close(): void;
}

/** A load client bound to one target. */
export interface LoadClient {
  /** Runs one stream; `t0` is its scheduled start (performance.now()), which latency counts from. */
  run(t0: number): Promise<Outcome>;
  /** Opens one stream and resolves at its first chunk, leaving it open. */
  hold(): Promise<Held>;
  /** Frees sockets and channels. */
  close(): void;
}
