import type { EngineStream } from "../../engine/active-stream.js";
import type { Chunk } from "../../gen/spillway/v1/chunk.js";
import { tryNext } from "../../engine/poll.js";
import type { AbortSource } from "../../engine/signals.js";
import { phaseTraceActive, tracePhase, TracePhase } from "../../observability/phase-trace.js";

/** The writable side of a server-streaming or bidi call. */
export interface ChunkSink {
  /** grpc-js `write`: false when the caller should wait for `drain`. */
  write(chunk: Chunk): boolean;
  /**
   * Writes several chunks, in order, each its own message (framed into one
   * write, see write-coalescing.ts); false as for `write`. Optional: without
   * it each chunk is written with `write`.
   */
  writeMany?(chunks: readonly Chunk[]): boolean;
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
 * Most chunks taken from a stream in one turn and written as one batch
 * ({@link pipeToCall}); only chunks the stream already holds are taken, so a
 * batch adds no buffering (the framed copy is transient).
 */
export const MAX_BATCH = 128;

/**
 * Writes an engine stream to a call, pulling the next chunk only once the
 * call has taken the previous one: when a write returns false, the engine
 * (and so the provider and its upstream) is not asked for more until the
 * call emits `drain`. What is buffered is thus bounded by the sink's
 * in-flight limit plus HTTP/2 flow control, whatever the client's reading
 * speed. The chunks the stream holds ready (`tryNext`: a burst from one
 * upstream read) are written together, up to {@link MAX_BATCH}, with the
 * sink's `writeMany` when it has one; the batch is written before the pipe
 * waits for more. Errors after the first chunk arrive as the stream's
 * in-band `error` chunk and are written like any other chunk. When `abort`
 * fires (client gone), the stream is cancelled with its reason, which
 * aborts the upstream request at once, and a wait for `drain` ends.
 * `abort` is the call's cheap {@link AbortSource} (call-scope.ts): one
 * callback per call, no AbortSignal or listener.
 */
export async function pipeToCall(sink: ChunkSink, stream: EngineStream, abort: AbortSource): Promise<void> {
  /** Set once the pipe is over: a later abort has nothing left to cancel here. */
  let over = false;
  /** The pending wait for `drain`, ended early by an abort. */
  let wake: (() => void) | undefined;
  abort.onAbort((reason) => {
    if (over) return;
    stream.cancel(reason);
    const w = wake;
    wake = undefined;
    w?.();
  });
  /** Resolves on the sink's next `drain`, or at once when the call is aborted. */
  const drainedOrAborted = (): Promise<void> | undefined => {
    if (abort.aborted) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        sink.removeListener("drain", done);
        wake = undefined;
        resolve();
      };
      wake = done;
      sink.once("drain", done);
    });
  };
  const it = stream[Symbol.asyncIterator]();
  const batch: Chunk[] = [];
  let first = true;
  /** Writes the batch; false when the sink wants `drain` first. */
  const flush = (): boolean => {
    if (batch.length === 0 || abort.aborted) return true;
    if (first) {
      first = false;
      tracePhase(TracePhase.FirstChunk, sink, "grpc");
      // Node's HTTP/2 hands a session's pending frames to the socket from a native immediate, which runs before this one.
      if (phaseTraceActive()) setImmediate(tracePhase, TracePhase.FirstFlush, sink, "grpc");
    }
    let ok: boolean;
    if (sink.writeMany !== undefined) ok = sink.writeMany(batch);
    else {
      ok = true;
      for (const c of batch) ok = sink.write(c);
    }
    batch.length = 0;
    return ok;
  };
  let ended = false;
  try {
    for (;;) {
      let r: IteratorResult<Chunk> | undefined;
      try {
        r = tryNext(it);
        if (r === undefined) {
          // Nothing more is ready: what was is written before waiting.
          if (!flush()) await drainedOrAborted();
          if (abort.aborted) break;
          r = await it.next();
        }
      } catch (e) {
        // The stream failed (it is over): the chunks before the failure still go out first.
        ended = true;
        flush();
        throw e;
      }
      if (abort.aborted) break;
      if (r.done) {
        ended = true;
        break;
      }
      batch.push(r.value);
      if (batch.length >= MAX_BATCH && !flush()) await drainedOrAborted();
    }
    flush();
  } finally {
    over = true;
    // Stopped before its end (client gone, a write threw): as `for await` would, the stream is cancelled.
    if (abort.aborted) stream.cancel(abort.abortReason);
    else if (!ended) stream.cancel();
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
