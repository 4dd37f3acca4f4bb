import type { HttpRoute } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { openAiShape } from "../openai/shape.js";
import { ResponsesBuilder } from "./builder.js";
import { parseResponses } from "./request.js";
import { responseHead, ResponsesSseEncoder } from "./stream.js";

/**
 * `POST /v1/responses`: OpenAI's Responses API over the same engine path as
 * chat completions. Streamed as Responses SSE events, or answered whole with
 * the Response object; an in-band failure of a non-streamed response becomes
 * an error status, as for chat.
 */
export const responsesRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/responses",
  shape: openAiShape,
  body: "json",
  example: () => ({ model: "local/echo", contentType: "application/json", body: JSON.stringify({ model: "local/echo", input: "hi" }) }),
  async handle(ex, call, body) {
    const parsed = parseResponses(body);
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
  },
};

/** The OpenAI Responses shape's routes. */
export const openAiResponsesRoutes: readonly HttpRoute[] = [responsesRoute];
