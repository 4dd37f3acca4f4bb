import { createParser, type EventSourceMessage } from "eventsource-parser";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";

/** Largest SSE event an upstream may send before the stream is failed (bytes). */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

/**
 * Reads Server-Sent Events from an upstream response body with
 * eventsource-parser, yielding each event as it completes. The body is pulled
 * only as fast as the caller consumes events, so backpressure reaches the
 * upstream socket. An event larger than `maxEventBytes` fails the stream with
 * `DataLoss` instead of buffering without bound.
 */
export async function* readSseEvents(
  body: AsyncIterable<Uint8Array>,
  provider: string,
  maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
): AsyncGenerator<EventSourceMessage> {
  for await (const batch of readSseBatches(body, provider, maxEventBytes)) {
    for (const e of batch) yield e;
  }
}

/**
 * {@link readSseEvents}, one batch per body read: the events that one read of
 * the upstream socket completed (never empty). The hot path iterates a batch
 * synchronously instead of paying an async-generator step per event. A batch
 * is the caller's to keep: the next read makes a new array.
 */
export async function* readSseBatches(
  body: AsyncIterable<Uint8Array>,
  provider: string,
  maxEventBytes = DEFAULT_MAX_EVENT_BYTES,
): AsyncGenerator<EventSourceMessage[]> {
  let ready: EventSourceMessage[] = [];
  let parseError: Error | undefined;
  const parser = createParser({
    maxBufferSize: maxEventBytes,
    onEvent: (e) => ready.push(e),
    onError: (e) => {
      if (e.type === "max-buffer-size-exceeded") parseError ??= e;
    },
  });
  const decoder = new TextDecoder();
  const source = bodySource(body);
  let ended = false;
  try {
    for (;;) {
      const bytes = await source.read();
      if (bytes === undefined) break;
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (parseError) {
        throw new SpillwayError(
          Code.DataLoss,
          `${provider}: upstream sent an event larger than ${maxEventBytes} bytes`,
          { httpStatus: 502, reason: "upstream_error", cause: parseError },
        );
      }
      if (ready.length > 0) {
        const batch = ready;
        ready = [];
        yield batch;
      }
    }
    ended = true;
    parser.feed(decoder.decode());
    if (ready.length > 0) yield ready;
  } finally {
    if (!ended) await source.stop();
  }
}

interface BodySource {
  /** The next piece, `undefined` at the end. */
  read(): Promise<Uint8Array | undefined>;
  /** The reader stopped before the end (after `[DONE]`, or on an error). */
  stop(): Promise<void>;
}

const isReadableStream = (b: AsyncIterable<Uint8Array>): b is ReadableStream<Uint8Array> =>
  typeof (b as Partial<ReadableStream<Uint8Array>>).getReader === "function";

/**
 * Reads a body. A WHATWG body (ReadableStream) is read with its reader so
 * that stopping early can look for the end without waiting for it: when the
 * end is already there (an upstream ends the body right after `[DONE]`),
 * the body is read to its end and the upstream connection stays open for
 * reuse; otherwise it is cancelled at once, which closes that connection.
 * (Cancelling a fetch body always closes its connection, and costs an
 * AbortError.)
 */
function bodySource(body: AsyncIterable<Uint8Array>): BodySource {
  if (isReadableStream(body)) {
    const reader = body.getReader();
    return {
      async read() {
        const r = await reader.read();
        return r.done ? undefined : r.value;
      },
      async stop() {
        try {
          const next = reader.read();
          next.catch(() => undefined);
          const last = await Promise.race([next, new Promise<undefined>((r) => setImmediate(r, undefined))]);
          if (last?.done) return;
          await reader.cancel();
        } catch {
          // The body failed or was aborted: nothing left to stop.
        }
      },
    };
  }
  // Any other body (undici's Node Readable): the same look for the end before
  // stopping, so that a connection whose body ends right after `[DONE]` is kept.
  const it = body[Symbol.asyncIterator]();
  return {
    async read() {
      const r = await it.next();
      return r.done ? undefined : r.value;
    },
    async stop() {
      try {
        const next = it.next();
        next.catch(() => undefined);
        const last = await Promise.race([next, new Promise<undefined>((r) => setImmediate(r, undefined))]);
        if (last?.done) return;
        await it.return?.();
      } catch {
        // The body failed or was aborted: nothing left to stop.
      }
    },
  };
}

/** Parses an upstream event's JSON, failing the stream with a clear error if it is not JSON. */
export function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch (e) {
    throw new SpillwayError(Code.DataLoss, `${provider}: upstream sent malformed JSON in a stream event`, {
      httpStatus: 502,
      reason: "upstream_error",
      cause: e,
    });
  }
}
