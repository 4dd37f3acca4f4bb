import { ResponsesBuilder } from "../encoders/responses-builder.js";
import { responseHead, ResponsesSseEncoder } from "../encoders/responses-sse.js";
import { parseResponses } from "../responses-request.js";
import type { HttpRoute } from "../route.js";
import { pipeStream, SSE_HEADERS } from "../sse.js";
import { providerHeader } from "./provider-header.js";

/**
 * `POST /v1/responses`: OpenAI's Responses API over the same engine path as
 * chat completions. Streamed as Responses SSE events, or answered whole with
 * the Response object; an in-band failure of a non-streamed response becomes
 * an error status, as for chat.
 */
export const responsesRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/responses",
  body: "json",
  async handle(ex, { engine }, body) {
    const parsed = parseResponses(body);
    const stream = await engine.generate(parsed.request, { signal: ex.signal });
    if (parsed.stream) {
      ex.start(200, "text/event-stream", [...SSE_HEADERS, providerHeader(stream)]);
      await pipeStream(ex, stream, new ResponsesSseEncoder(stream, parsed.echo));
      return;
    }
    const builder = new ResponsesBuilder(responseHead(stream, parsed.echo));
    for await (const chunk of stream) builder.push(chunk);
    if (builder.failure) throw builder.failure;
    ex.json(200, builder.response, [providerHeader(stream)]);
  },
};
