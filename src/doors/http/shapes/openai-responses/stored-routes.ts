import { Code } from "../../../../engine/code.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { ownerOf, type LoggedChunk, type Recording } from "../../../../engine/durable/durable-streams.js";
import type { StreamRecord } from "../../../../engine/durable/stream-log.js";
import { SpillwayError, invalidArgument } from "../../../../engine/errors.js";
import type { HttpExchange } from "../../exchange.js";
import type { HttpDoorContext, HttpRoute, RouteCall } from "../../route.js";
import { SSE_HEADERS } from "../../sse.js";
import { openAiShape } from "../openai/shape.js";
import type { ParsedResponses } from "./request.js";
import { storedEvents, storedRequest, storedResponse, streamIdOf, type StoredRequest } from "./stored.js";

/** The response id in `/v1/responses/{id}[/…]`. */
function idOf(ex: HttpExchange): string {
  return decodeURIComponent(ex.url.split("/")[3] ?? "");
}

function notFound(id: string): SpillwayError {
  return new SpillwayError(Code.NotFound, `Response with id '${id}' not found.`, { httpStatus: 404, reason: "not_found" });
}

/** The caller's stored response `id`, or 404 (unknown, expired, deleted, or someone else's: indistinguishable). */
export async function ownRecord(ex: HttpExchange, ctx: HttpDoorContext, id: string, param?: string): Promise<StreamRecord> {
  const streamId = streamIdOf(id);
  const found = streamId ? await ctx.engine.streams.get(streamId, ownerOf(ex.principal)) : undefined;
  // A resumable chat stream shares the log but is no Response.
  const record = found && (JSON.parse(found.request) as { echo?: unknown }).echo ? found : undefined;
  if (!record) {
    const err = notFound(id);
    if (param) return Promise.reject(new SpillwayError(Code.NotFound, err.message, { httpStatus: 404, reason: "previous_response_not_found", param }));
    throw err;
  }
  return record;
}

/** The query string as a map (first value of each name). */
function queryOf(ex: HttpExchange): URLSearchParams {
  return new URLSearchParams(ex.query);
}

/** `starting_after`: a non-negative integer, or -1 when absent. */
function startingAfter(q: URLSearchParams): number {
  const raw = q.get("starting_after");
  if (raw === null || raw === "") return -1;
  if (!/^\d{1,15}$/.test(raw)) throw invalidArgument(`Invalid 'starting_after': expected a non-negative integer (a sequence_number), got '${raw}'.`, "starting_after");
  return Number(raw);
}

function flag(q: URLSearchParams, name: string): boolean {
  const raw = q.get(name);
  if (raw === null || raw === "" || raw === "false") return false;
  if (raw === "true") return true;
  throw invalidArgument(`Invalid '${name}': expected true or false, got '${raw}'.`, name);
}

/**
 * Streams a stored response's events after `after` to the client: replay
 * from the log, then follow it live until it ends. The client leaving stops
 * only this follower, never the generation.
 */
export async function followResponse(ex: HttpExchange, ctx: HttpDoorContext, record: StreamRecord, after: number): Promise<void> {
  const chunks: AsyncIterable<LoggedChunk> = ctx.engine.streams.follow(record.id, -1, ex.signal);
  ex.start(200, "text/event-stream", SSE_HEADERS);
  try {
    for await (const text of storedEvents(record, chunks, after, () => ctx.engine.streams.get(record.id, record.owner))) {
      if (ex.aborted) break;
      const wait = ex.write(text);
      if (wait) await wait;
    }
  } catch (e) {
    if (!ex.aborted) void ex.write(ex.shape.streamError(SpillwayError.from(e)));
  } finally {
    ex.end();
  }
}

/**
 * `POST /v1/responses` with `background: true` (`rec` reserved): answers as
 * soon as the call is admitted and routed — refusals (unknown model, rate
 * limits, the background caps) are still HTTP errors — with the Response
 * `queued` (or, with `stream`, `response.created` and `response.queued`
 * events). It stays `queued` until the upstream's first chunk is in, then is
 * `in_progress` and runs with nobody connected; an upstream that fails
 * before then ends it `failed` (the reason in its `error`).
 */
export async function createBackground(ex: HttpExchange, call: RouteCall, ctx: HttpDoorContext, parsed: ParsedResponses, history: Array<Record<string, unknown>>, rec: Recording): Promise<void> {
  let admitted!: (model: string) => void;
  const ready = new Promise<string>((r) => (admitted = r));
  const generating: Promise<EngineStream> = call.generate(parsed.request, parsed.fallbacks, { streamId: rec.id, signal: rec.signal, onAdmitted: (m) => admitted(m) });
  let model: string;
  try {
    // Admitted (then it waits for its upstream), or refused: a refusal is still this request's HTTP error.
    model = await Promise.race([ready, generating.then((s) => s.route.model)]);
  } catch (e) {
    rec.abandon();
    throw e;
  }
  const request: StoredRequest = { echo: parsed.echo, model, requested: model, history, input: parsed.inputItems };
  let record: StreamRecord;
  try {
    record = await rec.open(JSON.stringify(request), "queued");
  } catch (e) {
    rec.cancel();
    generating.then((s) => s.cancel(e), () => undefined);
    throw e;
  }
  rec.startDetached(generating, (stream) => JSON.stringify({ ...request, model: stream.route.model } satisfies StoredRequest));
  if (parsed.stream) return followResponse(ex, ctx, record, -1);
  ex.json(200, storedResponse(record, []));
}

/** `GET /v1/responses/{id}`: the stored Response, or with `stream=true` its events after `starting_after`, then live. */
export const retrieveResponseRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/responses/:id",
  shape: openAiShape,
  // `stream=true` replays and follows the log: refused past capacity, and one slot while it follows.
  follows: { when: (ex) => queryOf(ex).get("stream") === "true", query: "stream=true" },
  async handle(ex, _call, _body, ctx) {
    const q = queryOf(ex);
    const stream = flag(q, "stream");
    const after = startingAfter(q);
    const record = await ownRecord(ex, ctx, idOf(ex));
    if (stream) return followResponse(ex, ctx, record, after);
    ex.json(200, storedResponse(record, await ctx.engine.streams.snapshot(record.id)));
  },
};

/** `POST /v1/responses/{id}/cancel`: cancels a background response (idempotent); answers the Response as it ended. */
export const cancelResponseRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/responses/:id/cancel",
  shape: openAiShape,
  async handle(ex, _call, _body, ctx) {
    const record = await ownRecord(ex, ctx, idOf(ex));
    if (!record.background) {
      throw invalidArgument("Only responses created with 'background': true can be cancelled.", "response_id");
    }
    const ended = await ctx.engine.streams.cancel(record);
    ex.json(200, storedResponse(ended, await ctx.engine.streams.snapshot(record.id)));
  },
};

/** `DELETE /v1/responses/{id}`: deletes a stored response (a running one is cancelled first). */
export const deleteResponseRoute: HttpRoute = {
  method: "delete",
  pattern: "/v1/responses/:id",
  shape: openAiShape,
  async handle(ex, _call, _body, ctx) {
    const id = idOf(ex);
    const record = await ownRecord(ex, ctx, id);
    await ctx.engine.streams.delete(record.id);
    ex.json(200, { id, object: "response", deleted: true });
  },
};

/** `GET /v1/responses/{id}/input_items`: the response's input items, paginated as OpenAI does (`limit` 1–100, default 20; `order` desc by default; `after` an item id). */
export const inputItemsRoute: HttpRoute = {
  method: "get",
  pattern: "/v1/responses/:id/input_items",
  shape: openAiShape,
  async handle(ex, _call, _body, ctx) {
    const q = queryOf(ex);
    const rawLimit = q.get("limit");
    const limit = rawLimit === null || rawLimit === "" ? 20 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidArgument(`Invalid 'limit': expected an integer from 1 to 100, got '${rawLimit}'.`, "limit");
    const order = q.get("order") ?? "desc";
    if (order !== "asc" && order !== "desc") throw invalidArgument(`Invalid 'order': expected 'asc' or 'desc', got '${order}'.`, "order");
    const record = await ownRecord(ex, ctx, idOf(ex));
    const items = [...storedRequest(record).input];
    if (order === "desc") items.reverse();
    const after = q.get("after");
    let start = 0;
    if (after) {
      const i = items.findIndex((it) => it["id"] === after);
      if (i < 0) throw invalidArgument(`Invalid 'after': no input item '${after}' in this response.`, "after");
      start = i + 1;
    }
    const data = items.slice(start, start + limit);
    ex.json(200, {
      object: "list",
      data,
      first_id: (data[0]?.["id"] as string | undefined) ?? null,
      last_id: (data[data.length - 1]?.["id"] as string | undefined) ?? null,
      has_more: start + limit < items.length,
    });
  },
};

/** The stored-response routes of the Responses shape. */
export const storedResponsesRoutes: readonly HttpRoute[] = [retrieveResponseRoute, cancelResponseRoute, deleteResponseRoute, inputItemsRoute];
