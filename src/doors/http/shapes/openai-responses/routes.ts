import { randomUUID } from "node:crypto";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { isTerminal, ownerOf } from "../../../../engine/durable/durable-streams.js";
import type { HttpExchange } from "../../exchange.js";
import type { HttpDoorContext, HttpRoute, RouteCall } from "../../route.js";
import { pipeStream, sseEvent, SSE_HEADERS } from "../../sse.js";
import { openAiShape } from "../openai/shape.js";
import { ResponsesBuilder } from "./builder.js";
import { parseResponses, type ParsedResponses } from "./request.js";
import { storedHead, storedRequest, storedResponse, type StoredRequest } from "./stored.js";
import { createBackground, ownRecord, storedResponsesRoutes } from "./stored-routes.js";
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
 * aborts the generation, which ends `cancelled`: OpenAI documents only background responses as surviving a disconnect); with
 * `background` see {@link createBackground} (queued, then a recorder
 * consumes it with nobody connected; a streaming client is one follower of the log).
 */
async function stored(ex: HttpExchange, call: RouteCall, ctx: HttpDoorContext, parsed: ParsedResponses, history: Array<Record<string, unknown>>, id: string): Promise<void> {
  const streams = ctx.engine.streams;
  const background = parsed.echo.background;
  const rec = streams.reserve(id, ownerOf(ex.principal), background);
  if (background) return createBackground(ex, call, ctx, parsed, history, rec);
  let stream: EngineStream;
  try {
    stream = await call.generate(parsed.request, parsed.fallbacks, { streamId: id });
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
  // The hot path: one loop, no extra async layers — record each chunk, render it, write it.
  let at = record.createdAt;
  let out = "";
  const builder = new ResponsesBuilder(storedHead(record, request), parsed.stream ? (type, json) => (out += sseEvent(type, json)) : undefined, () => at);
  const onAbort = (): void => stream.cancel(ex.signal.reason);
  ex.signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (parsed.stream) ex.start(200, "text/event-stream", SSE_HEADERS);
    let started = false;
    for await (const original of stream) {
      const chunk = rec.record(stream, original);
      at = rec.at;
      if (!started) {
        started = true;
        builder.start();
      }
      builder.push(chunk);
      if (parsed.stream && out) {
        if (ex.aborted) break;
        const wait = ex.write(out);
        out = "";
        if (wait) await wait;
      }
      if (isTerminal(chunk)) break;
    }
  } finally {
    ex.signal.removeEventListener("abort", onAbort);
    await rec.end(stream);
    if (parsed.stream) ex.end();
  }
  if (parsed.stream) return;
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
