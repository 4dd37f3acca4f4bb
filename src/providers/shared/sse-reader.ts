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
  for await (const bytes of body) {
    parser.feed(decoder.decode(bytes, { stream: true }));
    if (parseError) {
      throw new SpillwayError(
        Code.DataLoss,
        `${provider}: upstream sent an event larger than ${maxEventBytes} bytes`,
        { httpStatus: 502, openAiCode: "upstream_error", cause: parseError },
      );
    }
    if (ready.length > 0) {
      const batch = ready;
      ready = [];
      yield batch;
    }
  }
  parser.feed(decoder.decode());
  if (ready.length > 0) yield ready;
}

/** Parses an upstream event's JSON, failing the stream with a clear error if it is not JSON. */
export function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch (e) {
    throw new SpillwayError(Code.DataLoss, `${provider}: upstream sent malformed JSON in a stream event`, {
      httpStatus: 502,
      openAiCode: "upstream_error",
      cause: e,
    });
  }
}
