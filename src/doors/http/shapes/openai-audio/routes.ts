import type { Usage } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { emptyUsage } from "../../../../engine/payload.js";
import { toSrt, toVtt, TranscriptBuilder, transcriptUsage } from "./json.js";
import { TranscriptSseEncoder } from "./stream.js";
import type { HttpExchange } from "../../exchange.js";
import { readMultipart } from "../../multipart.js";
import type { HttpRoute } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { parseTranscription, type ParsedTranscription } from "./request.js";
import { openAiShape } from "../openai/shape.js";
import { exampleForm } from "./example.js";
import { speechRoute } from "./speech-routes.js";

/**
 * `POST /v1/audio/transcriptions`: a multipart upload (`file`, `model`,
 * `stream`, `response_format`, `language`, `prompt`) read with busboy as it
 * arrives, within `http.maxUploadBytes` (413 otherwise, without reading the
 * rest). With `stream=true` the text streams as `transcript.text.delta`
 * events while the engine recognizes it; otherwise the whole transcript is
 * sent as json, text, verbose_json, srt or vtt.
 */
export const transcriptionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/audio/transcriptions",
  shape: openAiShape,
  body: "stream",
  example: exampleForm,
  async handle(ex, call, _body, { config }) {
    // Registers the body reader before the first await, as uWS requires.
    const form = readMultipart(ex, { maxBytes: config.http.maxUploadBytes });
    const parsed = parseTranscription(await form);
    const stream = await call.transcribe(parsed.config, fileBytes(parsed));
    if (parsed.stream) {
      ex.start(200, "text/event-stream", SSE_HEADERS);
      await pipeStream(ex, stream, new TranscriptSseEncoder());
      return;
    }
    await sendWhole(ex, stream, parsed);
  },
};

// eslint-disable-next-line @typescript-eslint/require-await -- an async iterable over chunks already received
async function* fileBytes(parsed: ParsedTranscription): AsyncGenerator<Uint8Array> {
  yield* parsed.file.chunks;
}

async function sendWhole(ex: HttpExchange, stream: EngineStream, parsed: ParsedTranscription): Promise<void> {
  const transcript = new TranscriptBuilder();
  let usage: Usage = emptyUsage();
  for await (const c of stream) {
    const p = c.payload;
    if (p?.$case === "transcript") transcript.push(p.value);
    else if (p?.$case === "usage") usage = p.value;
    else if (p?.$case === "error") throw SpillwayError.fromChunkError(p.value);
  }
  const text = transcript.text.trim();
  switch (parsed.format) {
    case "text":
      ex.send(200, "text/plain; charset=utf-8", `${text}\n`);
      return;
    case "srt":
      ex.send(200, "text/plain; charset=utf-8", toSrt(transcript.segments));
      return;
    case "vtt":
      ex.send(200, "text/vtt; charset=utf-8", toVtt(transcript.segments));
      return;
    case "verbose_json": {
      const last = transcript.segments[transcript.segments.length - 1];
      ex.json(
        200,
        {
          task: "transcribe",
          language: parsed.config.language || "english",
          duration: usage.inputAudioSeconds || (last?.end ?? 0),
          text,
          segments: transcript.segments.map((s, id) => ({
            id,
            seek: 0,
            start: s.start,
            end: s.end,
            text: s.text,
            tokens: [],
            temperature: 0,
            avg_logprob: 0,
            compression_ratio: 0,
            no_speech_prob: 0,
          })),
          usage: { type: "duration", seconds: Math.ceil(usage.inputAudioSeconds) },
        },
      );
      return;
    }
    default:
      ex.json(200, { text, usage: transcriptUsage(usage) });
  }
}

/** The OpenAI audio shape's routes. */
export const openAiAudioRoutes: readonly HttpRoute[] = [speechRoute, transcriptionsRoute];
