import type { EngineStream } from "../../engine/active-stream.js";
import type { Chunk } from "../../gen/spillway/v1/chunk.js";

/** The writable side of a server-streaming or bidi call. */
export interface ChunkSink {
  /** grpc-js `write`: false when the caller should wait for `drain`. */
  write(chunk: Chunk): boolean;
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/** Resolves on the sink's next `drain`, or at once when `signal` aborts. */
function drained(sink: ChunkSink, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      sink.removeListener("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    sink.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Writes an engine stream to a call, pulling the next chunk only once the
 * call has taken the previous one: when `write()` returns false, the engine
 * (and so the provider and its upstream) is not asked for more until the
 * call emits `drain`. What is buffered is thus bounded by grpc-js's writable
 * high-water mark (16 messages) plus HTTP/2 flow control, whatever the
 * client's reading speed. Errors after the first chunk arrive as the
 * stream's in-band `error` chunk and are written like any other chunk.
 * When `signal` aborts (client gone), the stream is cancelled, which aborts
 * the upstream request at once.
 */
export async function pipeToCall(sink: ChunkSink, stream: EngineStream, signal: AbortSignal): Promise<void> {
  const onAbort = (): void => stream.cancel(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      if (signal.aborted) break;
      if (!sink.write(chunk)) await drained(sink, signal);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (signal.aborted) stream.cancel(signal.reason);
  }
}

/**
 * Writes chunks that need no cancelling (a stored stream's log) to a call
 * with the same backpressure as {@link pipeToCall}; stops when `signal` aborts.
 */
export async function pipeChunks(sink: ChunkSink, chunks: AsyncIterable<Chunk>, signal: AbortSignal): Promise<void> {
  for await (const chunk of chunks) {
    if (signal.aborted) break;
    if (!sink.write(chunk)) await drained(sink, signal);
  }
}
