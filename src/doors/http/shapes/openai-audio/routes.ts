import type { Usage } from "../../../../gen/spillway/v1/chunk.js";
import type { EngineStream } from "../../../../engine/active-stream.js";
import { SpillwayError } from "../../../../engine/errors.js";
import type { Router } from "../../../../engine/router.js";
import { emptyUsage } from "../../../../engine/payload.js";
import { toSrt, toVtt, TranscriptBuilder, transcriptUsage } from "./json.js";
import { TranscriptSseEncoder } from "./stream.js";
import type { HttpExchange } from "../../exchange.js";
import { openMultipart } from "../../multipart.js";
import type { HttpRoute } from "../../route.js";
import { pipeStream, SSE_HEADERS } from "../../sse.js";
import { MODEL_HEADER, parseAtFileStart, parseAtFormEnd, parseTranscription, type ParsedTranscription } from "./request.js";
import type { Shape } from "../shape.js";
import { openAiShape } from "../openai/shape.js";
import { exampleForm } from "./example.js";
import { speechRoute } from "./speech-routes.js";

/** The OpenAI shape, also reading the {@link MODEL_HEADER} request header. */
const transcriptionShape: Shape = { ...openAiShape, headers: [...openAiShape.headers, MODEL_HEADER], corsHeaders: [...openAiShape.corsHeaders, MODEL_HEADER] };

/**
 * `POST /v1/audio/transcriptions`: a multipart upload (`file`, `model`,
 * `stream`, `response_format`, `language`, `prompt`) read with busboy as it
 * arrives, within `http.maxUploadBytes` (413 otherwise, without reading the
 * rest). When the file part begins with its model known and an early start
 * asked for (`model` and `stream=true` before it, or the `x-spillway-model`
 * header) or useful (the provider takes later fields: an OpenAI-compatible
 * upstream; see `parseAtFileStart`), recognition starts with the file's
 * first byte — the upstream request opens and the file streams into it —,
 * `live` unless `stream=false` came first; fields after the file are
 * checked at the form's end, before the recognizer hears the end of the
 * audio, and handed to a provider that takes them. A reader slower than
 * the client pauses the client's upload (see `UploadQueue`). Such a call
 * is not retried (its body cannot be replayed). Otherwise (the openai
 * SDK's usual order: `file` first) the file waits in memory for the rest
 * of the form, as before, and is then sent whole — retried and failed
 * over like a text call.
 * With `stream=true` the text streams as `transcript.text.delta` events as
 * it is recognized — during the upload, when it started early; otherwise
 * the whole transcript is sent as json, text, verbose_json, srt or vtt.
 */
export const transcriptionsRoute: HttpRoute = {
  method: "post",
  pattern: "/v1/audio/transcriptions",
  shape: transcriptionShape,
  body: "stream",
  example: exampleForm,
  async handle(ex, call, _body, { config, engine }) {
    // Registers the body reader before the first await, as uWS requires.
    const form = openMultipart(ex, { maxBytes: config.http.maxUploadBytes });
    const header = ex.headers[MODEL_HEADER] || undefined;
    const part = await form.file;
    const early = part && parseAtFileStart(part.fieldsBefore, part, header, (model) => takesLateFields(engine.router, model));
    if (!early) {
      await form.done;
      const parsed = parseTranscription(form.fields, part, header);
      // The whole file is in memory by now: handed over as held pieces, it can be sent again (retries, fallbacks).
      const held: Buffer[] = [];
      for await (const piece of part!.bytes) held.push(piece);
      await respond(ex, await call.transcribe(parsed.config, held), parsed, form.error);
      return;
    }
    // The form's own failure (413, a late field, the client gone) is what the
    // client hears, not what the recognizer made of its audio stopping.
    let lateError: SpillwayError | undefined;
    const whyFailed = (): SpillwayError | undefined => lateError ?? form.error();
    const lateFields = takesLateFields(engine.router, early.config.model);
    const complete = form.done
      .then(() => parseAtFormEnd(form.fields, part, early, header, lateFields))
      .catch((e: unknown) => {
        lateError = SpillwayError.from(e);
        throw lateError;
      });
    complete.catch(() => undefined);
    // What fields after the file add, for a provider that still uses them (it may never look).
    const completed = complete.then((p) => p.config);
    completed.catch(() => undefined);
    let stream: EngineStream;
    try {
      stream = await call.transcribe(early.config, audioThen(part.bytes, complete), completed);
    } catch (e) {
      throw whyFailed() ?? e;
    }
    let parsed: ParsedTranscription;
    if (early.stream === true) parsed = { config: early.config, stream: true, format: "json" };
    else {
      try {
        parsed = await complete;
      } catch (e) {
        stream.cancel(e);
        throw e;
      }
    }
    await respond(ex, stream, parsed, whyFailed);
  },
};

/**
 * Whether the provider of `model` takes fields sent after the file
 * (`Provider.transcribeLateFields`); false for a model no provider serves
 * (the engine call refuses it).
 */
function takesLateFields(router: Router, model: string): boolean {
  try {
    return router.resolve(model).provider.transcribeLateFields === true;
  } catch {
    return false;
  }
}

/** The file's bytes, then — before the end of the audio — the rest of the form, complete and valid. */
async function* audioThen(bytes: AsyncIterable<Buffer>, complete: Promise<unknown>): AsyncGenerator<Uint8Array> {
  yield* bytes;
  await complete;
}

/** Sends the transcript, streamed or whole; an error chunk is reported as `whyFailed()` when that says why. */
async function respond(ex: HttpExchange, stream: EngineStream, parsed: ParsedTranscription, whyFailed: () => SpillwayError | undefined): Promise<void> {
  if (parsed.stream) {
    ex.start(200, "text/event-stream", SSE_HEADERS);
    await pipeStream(ex, stream, new TranscriptSseEncoder(whyFailed));
    return;
  }
  await sendWhole(ex, stream, parsed, whyFailed);
}

async function sendWhole(ex: HttpExchange, stream: EngineStream, parsed: ParsedTranscription, whyFailed: () => SpillwayError | undefined): Promise<void> {
  const transcript = new TranscriptBuilder();
  let usage: Usage = emptyUsage();
  for await (const c of stream) {
    const p = c.payload;
    if (p?.$case === "transcript") transcript.push(p.value);
    else if (p?.$case === "usage") usage = p.value;
    else if (p?.$case === "error") throw whyFailed() ?? SpillwayError.fromChunkError(p.value);
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
