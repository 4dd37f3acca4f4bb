import type { AudioChunk, Usage } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { emptyUsage } from "../../../../engine/payload.js";
import { contentTypeOf, encodeAudio } from "../../../../audio/encode.js";
import { speechDeltaFrame, speechDoneFrames } from "./speech-stream.js";
import type { HttpExchange } from "../../exchange.js";
import type { HttpRoute } from "../../route.js";
import { SSE_HEADERS } from "../../sse.js";
import { sseErrorFrame } from "../openai/wire.js";
import { parseSpeech } from "./speech-request.js";
import { openAiShape } from "../openai/shape.js";

/** What the audio of a stream leaves behind: its usage, or the in-band error that ended it. */
interface StreamOutcome {
  usage: Usage;
  error: SpillwayError | undefined;
}

/** The audio chunks of an engine stream; usage is recorded, an in-band error thrown. */
async function* audioOf(stream: EngineStream, outcome: StreamOutcome): AsyncGenerator<AudioChunk> {
  for await (const c of stream) {
    const p = c.payload;
    if (p?.$case === "audio") yield p.value;
    else if (p?.$case === "usage") outcome.usage = p.value;
    else if (p?.$case === "error") throw SpillwayError.fromChunkError(p.value);
  }
}

/**
 * `POST /v1/audio/speech`: synthesized speech, streamed as it is made.
 * `stream_format: "audio"` (default) sends the encoded bytes as a chunked
 * body with the format's Content-Type; `"sse"` sends them base64 in
 * `speech.audio.delta` events, then `speech.audio.done` with usage and
 * `[DONE]`. Errors before the first audio are real statuses; a failure
 * after it ends an SSE stream with an error event, and cuts a raw audio
 * body short without its final chunk, so the client sees the failure.
 */
export const speechRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/audio/speech",
  shape: openAiShape,
  body: "json",
  example: () => ({ model: "local/tts", contentType: "application/json", body: JSON.stringify({ model: "local/tts", input: "hello", voice: "alloy" }) }),
  async handle(ex, call, body) {
    const parsed = parseSpeech(body);
    const stream = await call.synthesize(parsed.request);
    const outcome: StreamOutcome = { usage: emptyUsage(), error: undefined };
    const bytes = encodeAudio(audioOf(stream, outcome), parsed.format, stream.signal);
    const onAbort = (): void => stream.cancel(ex.signal.reason);
    ex.signal.addEventListener("abort", onAbort, { once: true });
    try {
      // The first bytes decide the status: an encoding failure here is still a 4xx/5xx.
      const first = await bytes.next();
      const sse = parsed.streamFormat === "sse";
      const headers = sse ? SSE_HEADERS : [["cache-control", "no-cache"] as const];
      ex.start(200, sse ? "text/event-stream" : contentTypeOf(parsed.format), headers);
      if (!first.done) await send(ex, first.value, sse);
      try {
        for await (const piece of bytes) {
          if (ex.aborted) break;
          await send(ex, piece, sse);
        }
      } catch (e) {
        outcome.error = SpillwayError.from(e);
      }
      if (ex.aborted) return;
      if (!sse) {
        // A raw body has no room for an error: drop the connection so the client cannot mistake it for the end.
        if (outcome.error) ex.close();
        else ex.end();
        return;
      }
      ex.end(outcome.error ? sseErrorFrame(outcome.error, `"type":"error",`) : speechDoneFrames(outcome.usage));
    } finally {
      ex.signal.removeEventListener("abort", onAbort);
      stream.cancel();
      await bytes.return(undefined);
    }
  },
};

async function send(ex: HttpExchange, piece: Uint8Array, sse: boolean): Promise<void> {
  if (piece.length === 0) return;
  const wait = ex.write(sse ? speechDeltaFrame(piece) : piece);
  if (wait) await wait;
}
