import type { Chunk } from "../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../engine/active-stream.js";
import { SpillwayError } from "../../engine/errors.js";
import type { HttpExchange, Headers } from "./exchange.js";
import { tracePhase, TracePhase } from "../../observability/phase-trace.js";

/** Response headers of every SSE stream. */
export const SSE_HEADERS: Headers = [
  ["cache-control", "no-cache"],
  ["x-accel-buffering", "no"],
];

/**
 * A `data:` frame. The data must be one line (JSON.stringify output is), which
 * keeps this a concatenation on the hot path.
 */
export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

/** An `event:` + `data:` frame. `event` is one of our own constant names. */
export function sseEvent(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

/** Turns the chunks of one stream into wire text (SSE frames, or raw bytes). */
export interface StreamEncoder {
  /** Wire text for one chunk ('' for none). The terminal chunk's text ends the stream. */
  encode(chunk: Chunk): string | Uint8Array;
}

/**
 * Pipes an engine stream to a started response: pulls the next chunk only
 * when the socket has taken the previous one (backpressure end to end), ends
 * the response after the terminal chunk, and cancels the stream, aborting the
 * upstream, as soon as the client goes away.
 */
export async function pipeStream(ex: HttpExchange, stream: EngineStream, encoder: StreamEncoder): Promise<void> {
  let piping = true;
  ex.abortSource.onAbort((reason) => piping && stream.cancel(reason));
  const it = stream[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      // What the engine already holds is taken without a promise per chunk (a burst of upstream events goes out in one turn).
      const r = stream.tryNext?.() ?? (await it.next());
      if (r.done) {
        ended = true;
        break;
      }
      tracePhase(TracePhase.FirstChunk, ex, "sse");
      if (ex.aborted) break;
      const out = encoder.encode(r.value);
      if (out.length > 0) {
        const wait = ex.write(out);
        if (wait) await wait;
      }
    }
  } catch (e) {
    // The engine never throws after the first chunk; anything here is ours.
    if (!ex.aborted) void ex.write(ex.shape.streamError(SpillwayError.from(e)));
  } finally {
    piping = false;
    // As `for await` did: a loop left early closes the stream.
    if (!ended) void it.return?.()?.catch(() => undefined);
    if (ex.aborted) stream.cancel(ex.abortSource.abortReason);
    ex.end();
  }
}
