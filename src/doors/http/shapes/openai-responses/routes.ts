import { randomUUID } from "node:crypto";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { ownerOf, type LoggedChunk } from "../../../../engine/durable/durable-streams.js";
import type { HttpExchange } from "../../exchange.js";
import type { HttpDoorContext, HttpRoute, RouteCall } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { openAiShape } from "../openai/shape.js";
import { ResponsesBuilder } from "./builder.js";
import { parseResponses, type ParsedResponses } from "./request.js";
import { storedEvents, storedHead, storedRequest, storedResponse, type StoredRequest } from "./stored.js";
import { followResponse, ownRecord, storedResponsesRoutes } from "./stored-routes.js";
import { responseHead, ResponsesSseEncoder } from "./stream.js";

/** The conversation before a request with `previous_response_id`: the chain's inputs and outputs. */
async function historyOf(ex: HttpExchange, ctx: HttpDoorContext, previousId: string): Promise<Array<Record<string, unknown>>> {
  const prev = await ownRecord(ex, ctx, previousId, "previous_response_id");
  const stored = storedRequest(prev);
  const output = storedResponse(prev, await ctx.engine.streams.snapshot(prev.id))["output"] as Array<Record<string, unknown>>;
  return [...stored.history, ...stored.input, ...output];
}

/** Not stored (`store: false`): the engine stream goes straight to the client, as before. */
async function unstored(ex: HttpExchange, call: RouteCall, parsed: ParsedResponses): Promise<void> {
  const stream = await call.generate(parsed.request, parsed.fallbacks);
  if (parsed.stream) {
    ex.start(200, "text/event-stream", SSE_HEADERS);
    await pipeStream(ex, stream, new ResponsesSseEncoder(stream, parsed.echo));
    return;
  }
  const builder = new ResponsesBuilder(responseHead(stream, parsed.echo));
  for await (const chunk of stream) builder.push(chunk);
  if (builder.failure) throw builder.failure;
  ex.json(200, builder.response);
}

/**
 * Stored (the default): the chunks go to the stream log as they pass. In
 * the foreground the client's connection drives the stream (it leaving
 * aborts the generation, which ends `cancelled`, as OpenAI does); with
 * `background` a recorder consumes it with nobody connected, and a
 * streaming client is one follower of the log.
 */
async function stored(ex: HttpExchange, call: RouteCall, ctx: HttpDoorContext, parsed: ParsedResponses, history: Array<Record<string, unknown>>, id: string): Promise<void> {
  const streams = ctx.engine.streams;
  const background = parsed.echo.background;
  const rec = streams.reserve(id, ownerOf(ex.principal), background);
  let stream: EngineStream;
  try {
    stream = await call.generate(parsed.request, parsed.fallbacks, background ? { streamId: id, signal: rec.signal } : { streamId: id });
  } catch (e) {
    rec.abandon();
    throw e;
  }
  const request: StoredRequest = { echo: parsed.echo, model: stream.route.model, history, input: parsed.inputItems };
  let record;
  try {
    record = await rec.open(JSON.stringify(request));
  } catch (e) {
    stream.cancel(e);
    throw e;
  }
  if (background) {
    rec.runDetached(stream);
    if (parsed.stream) return followResponse(ex, ctx, record, -1);
    ex.json(200, storedResponse(record, []));
    return;
  }
  const tee = rec.attach(stream);
  const live: AsyncIterable<LoggedChunk> = {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of tee) yield { chunk, at: rec.at };
    },
  };
  if (parsed.stream) {
    ex.start(200, "text/event-stream", SSE_HEADERS);
    const onAbort = (): void => stream.cancel(ex.signal.reason);
    ex.signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const text of storedEvents(record, live, -1)) {
        if (ex.aborted) break;
        const wait = ex.write(text);
        if (wait) await wait;
      }
    } finally {
      ex.signal.removeEventListener("abort", onAbort);
      ex.end();
    }
    return;
  }
  let at = record.createdAt;
  const builder = new ResponsesBuilder(storedHead(record, request), undefined, () => at);
  for await (const c of live) {
    at = c.at;
    builder.push(c.chunk);
  }
  if (builder.failure) throw builder.failure;
  ex.json(200, builder.response);
}

/**
 * `POST /v1/responses`: OpenAI's Responses API over the same engine path as
 * chat completions. Streamed as Responses SSE events, or answered whole with
 * the Response object; an in-band failure of a non-streamed response becomes
 * an error status, as for chat. Stored by default (`store`), retrievable,
 * resumable and (with `background`) detached from the connection; see
 * `stored-routes.ts`.
 */
export const responsesRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/responses",
  shape: openAiShape,
  body: "json",
  example: () => ({ model: "local/echo", contentType: "application/json", body: JSON.stringify({ model: "local/echo", input: "hi" }) }),
  async handle(ex, call, body, ctx) {
    const id = randomUUID().replaceAll("-", "");
    // The conversation so far is needed before `input` can be checked (a function_call_output answers a stored call).
    const previous = (body as { previous_response_id?: unknown } | null)?.previous_response_id;
    const history = typeof previous === "string" && previous ? await historyOf(ex, ctx, previous) : [];
    const parsed = parseResponses(body, history, id);
    if (!parsed.echo.store) return unstored(ex, call, parsed);
    return stored(ex, call, ctx, parsed, history, id);
  },
};

/** The OpenAI Responses shape's routes. */
export const openAiResponsesRoutes: readonly HttpRoute[] = [responsesRoute, ...storedResponsesRoutes];
