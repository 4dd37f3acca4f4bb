import type { LoggedChunk } from "../../../../engine/durable/durable-streams.js";
import type { StreamRecord } from "../../../../engine/durable/stream-log.js";
import { sseEvent } from "../../sse.js";
import { ResponsesBuilder } from "./builder.js";
import type { ResponseHead } from "./json.js";
import type { ResponseEcho } from "./request.js";

/**
 * What the Responses shape keeps of a stored response next to its chunks
 * (the record's `request`, as JSON): enough to render its events again and
 * to continue its conversation.
 */
export interface StoredRequest {
  /** What the Response object echoes. */
  readonly echo: ResponseEcho;
  /** The upstream's model name, as the Response shows it (while a background response is queued: the one it will try first). */
  readonly model: string;
  /** A background response: the upstream model it was queued for, which `response.created` and `response.queued` show (a fallback may serve it instead). */
  readonly requested?: string;
  /** Items of the `previous_response_id` chain before this request's input (inputs and outputs). */
  readonly history: ReadonlyArray<Record<string, unknown>>;
  /** This request's input items (what `input_items` lists). */
  readonly input: ReadonlyArray<Record<string, unknown>>;
}

/** `resp_<stream id>` ↔ the stream id. */
export const responseId = (streamId: string): string => `resp_${streamId}`;

/** The stream id of a response id, or undefined when it is not one of ours. */
export function streamIdOf(responseId: string): string | undefined {
  return /^resp_[0-9a-f]{32}$/.test(responseId) ? responseId.slice(5) : undefined;
}

/** The stored request of a record. */
export function storedRequest(record: StreamRecord): StoredRequest {
  return JSON.parse(record.request) as StoredRequest;
}

/** The identity of a stored response: deterministic from its record, so replays match the live events. */
export function storedHead(record: StreamRecord, stored: StoredRequest, queued = false): ResponseHead {
  return { id: responseId(record.id), createdAt: Math.floor(record.createdAt / 1000), model: queued ? (stored.requested ?? stored.model) : stored.model, echo: stored.echo };
}

/**
 * The Response object of a stored stream from the chunks logged so far; the
 * status is the record's while it runs (the builder's once it ended).
 */
export function storedResponse(record: StreamRecord, chunks: readonly LoggedChunk[]): Record<string, unknown> {
  const stored = storedRequest(record);
  let at = record.createdAt;
  const builder = new ResponsesBuilder(storedHead(record, stored), undefined, () => at);
  for (const c of chunks) {
    at = c.at;
    builder.push(c.chunk);
  }
  const response = builder.response;
  if (response["status"] === "in_progress") response["status"] = record.status === "queued" ? "queued" : record.status === "in_progress" ? "in_progress" : record.status;
  return response;
}

/**
 * Renders the Responses SSE events of a stored stream: the logged chunks go
 * through the same {@link ResponsesBuilder} as the live stream did, with the
 * clock set to each chunk's logging time, so every event — its
 * `sequence_number` included — is the one the live client got. Events up to
 * `startingAfter` are skipped. Yields the SSE text per chunk.
 *
 * A background response starts with `response.created` and
 * `response.queued` (status `queued`, the model asked for) at once, then
 * `response.in_progress` with its first chunk. `refresh` re-reads the record
 * when it was still queued as the first chunk arrives (by then it names the
 * upstream's model).
 */
export async function* storedEvents(
  record: StreamRecord,
  chunks: AsyncIterable<LoggedChunk>,
  startingAfter: number,
  refresh?: () => Promise<StreamRecord | undefined>,
): AsyncGenerator<string> {
  let stored = storedRequest(record);
  let at = record.createdAt;
  let out = "";
  const ref: { builder?: ResponsesBuilder } = {};
  const sink = (type: string, json: string): void => {
    if (ref.builder!.nextSequenceNumber - 1 > startingAfter) out += sseEvent(type, json);
  };
  const builder = (ref.builder = new ResponsesBuilder(storedHead(record, stored, record.background), sink, () => at));
  if (record.background) {
    builder.queue();
    if (out) {
      const text = out;
      out = "";
      yield text;
    }
  }
  let started = false;
  for await (const c of chunks) {
    at = c.at;
    if (!started) {
      started = true;
      const fresh = record.status === "queued" && refresh ? await refresh() : undefined;
      if (fresh) stored = storedRequest(fresh);
      builder.start(storedHead(record, stored));
    }
    builder.push(c.chunk);
    if (out) {
      const text = out;
      out = "";
      yield text;
    }
  }
}
