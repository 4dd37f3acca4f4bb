import { AudioEncoding, TranscriptDelta_Kind } from "../../gen/spillway/v1/chunk.js";
import { ModelKind, type SynthesizeRequest, type TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { Provider, ProviderContext } from "../../engine/provider.js";
import { DEFAULT_MAX_EVENT_BYTES, parseEventJson } from "../shared/sse-events.js";
import { SsePushStream } from "../shared/sse-push.js";
import { postJson, upstreamRequest, type UpstreamResponse } from "../shared/upstream-http.js";
import { streamReadError, upstreamError } from "../shared/upstream-errors.js";
import { streamMultipart } from "./openai-multipart.js";
import { type Obj, isObj, amount as num } from "../shared/json.js";

/** Where an OpenAI-compatible upstream lives, as its provider knows it. */
export interface OpenAiUpstream {
  /** The provider's name (prefix of its model ids). */
  readonly name: string;
  /** The URL of an API route (`/audio/speech`, `/audio/transcriptions`) for `model` (see `OpenAiDialect.url`). */
  readonly url: (route: string, model: string) => string;
  /**
   * Runs one upstream request with the provider's headers plus `extra`,
   * authorized with a key from its pool (rotating, resting refused keys).
   */
  readonly send: <T>(ctx: ProviderContext, extra: Readonly<Record<string, string>>, run: (headers: Record<string, string>) => Promise<T>) => Promise<T>;
}


const FORMAT_OF: Partial<Record<AudioEncoding, string>> = {
  [AudioEncoding.AUDIO_ENCODING_MP3]: "mp3",
  [AudioEncoding.AUDIO_ENCODING_OPUS]: "opus",
  [AudioEncoding.AUDIO_ENCODING_AAC]: "aac",
  [AudioEncoding.AUDIO_ENCODING_FLAC]: "flac",
  [AudioEncoding.AUDIO_ENCODING_WAV]: "wav",
  [AudioEncoding.AUDIO_ENCODING_PCM_S16LE]: "pcm",
};

/** The sample rate of OpenAI's `pcm` speech output. */
const OPENAI_PCM_RATE = 24_000;

/** What an OpenAI model id can do, from its name (`tts-1`, `whisper-1`, `gpt-4o-transcribe`, …). */
export function openAiModelKinds(model: string): ModelKind[] {
  if (/tts/.test(model)) return [ModelKind.MODEL_KIND_SPEECH];
  if (/whisper|transcribe/.test(model)) return [ModelKind.MODEL_KIND_TRANSCRIPTION];
  if (/realtime/.test(model)) return [ModelKind.MODEL_KIND_REALTIME];
  return [ModelKind.MODEL_KIND_TEXT];
}

/** `tts-1` and `tts-1-hd` cannot stream SSE; the GPT-4o speech models can, and report usage when they do. */
function speechSse(model: string): boolean {
  return !/^tts-1/.test(model);
}

/**
 * Speech from an OpenAI-compatible upstream (`POST /audio/speech`). The
 * upstream encodes (the request's encoding becomes `response_format`), and
 * its bytes are passed on as they arrive, as AudioChunks with that encoding:
 * from an SSE stream (`speech.audio.delta`, base64-decoded, with usage from
 * `speech.audio.done`) for models that support it, else the raw body.
 */
export async function* openAiSpeech(up: OpenAiUpstream, model: string, req: SynthesizeRequest, ctx: ProviderContext): AsyncGenerator<ChunkPayload> {
  const encoding = FORMAT_OF[req.encoding] ? req.encoding : AudioEncoding.AUDIO_ENCODING_MP3;
  const body: Obj = { model, input: req.input, voice: req.voice, response_format: FORMAT_OF[encoding] };
  if (req.speed && req.speed !== 1) body["speed"] = req.speed;
  if (req.instructions) body["instructions"] = req.instructions;
  if (speechSse(model)) body["stream_format"] = "sse";
  const res = await up.send(ctx, {}, (h) => postJson(up.name, up.url("/audio/speech", model), body, h, ctx.signal));
  const audio = (data: Uint8Array): ChunkPayload => ({
    $case: "audio",
    value: { data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), encoding, sampleRate: encoding === AudioEncoding.AUDIO_ENCODING_PCM_S16LE ? OPENAI_PCM_RATE : 0, channels: 1 },
  });
  if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    for await (const bytes of res.body) yield audio(bytes);
    yield finishPayload(FinishReason.REASON_STOP);
    return;
  }
  yield* new SsePushStream<ChunkPayload>(
    res.stream,
    up.name,
    {
      onEvent(e, emit) {
        if (e.data === "[DONE]") throw upstreamMalformed(up.name, "a speech stream without speech.audio.done");
        const j = parseEventJson(e.data, up.name);
        if (!isObj(j)) return false;
        if (j["type"] === "speech.audio.delta" && typeof j["audio"] === "string") emit(audio(Buffer.from(j["audio"], "base64")));
        else if (j["type"] === "speech.audio.done") {
          const u = isObj(j["usage"]) ? j["usage"] : {};
          emit(usagePayload({ inputTokens: num(u["input_tokens"]), outputTokens: num(u["output_tokens"]), totalTokens: num(u["total_tokens"]) }));
          emit(finishPayload(FinishReason.REASON_STOP));
          return true;
        } else if (isObj(j["error"])) throw upstreamStreamError(up.name, j["error"]);
        return false;
      },
      onBodyEnd() {
        throw upstreamMalformed(up.name, "a speech stream without speech.audio.done");
      },
      readError: (e) => streamReadError(up.name, e, ctx.signal),
    },
    DEFAULT_MAX_EVENT_BYTES,
    ctx.alive,
  );
}

/** GPT-4o transcription models stream text deltas; `whisper-1` (and unknown models) answer whole. */
function transcriptionStreams(model: string): boolean {
  return /^gpt-.*transcribe/.test(model);
}

/**
 * Transcription by an OpenAI-compatible upstream (`POST
 * /audio/transcriptions`). The request opens at once and the audio is
 * streamed up as a multipart body as it arrives (each piece the upstream
 * takes counts as life for the call's timeouts: the upstream answers only
 * after the whole file, however long the client's upload takes); a failing
 * `audio` aborts the request. Fields known at the start go before the file;
 * `language` and `prompt` that `completed` adds (sent by the client after
 * its file) go after it, in the same request. GPT-4o models are asked to
 * stream (`stream=true`): each `transcript.text.delta` becomes a `DELTA`,
 * `transcript.text.done` gives the usage. Others (`whisper-1`) answer with
 * `verbose_json`, whose segments become `FINAL`s with their spans. One
 * attempt: a streamed body cannot be replayed.
 */
export async function* openAiTranscribe(
  up: OpenAiUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
  completed?: Promise<TranscribeConfig>,
): AsyncGenerator<ChunkPayload> {
  const streams = transcriptionStreams(model);
  const fields: Array<[string, string]> = [["model", model]];
  if (config.language) fields.push(["language", config.language]);
  if (config.prompt) fields.push(["prompt", config.prompt]);
  fields.push(["response_format", streams ? "json" : "verbose_json"]);
  if (streams) fields.push(["stream", "true"]);
  const after = completed && (async () => lateFields(config, await completed));
  const form = streamMultipart(
    fields,
    {
      field: "file",
      filename: config.filename || "audio",
      mimeType: config.mimeType || "application/octet-stream",
      data: counted(audio, ctx),
    },
    after,
  );
  const res = await up.send(ctx, { "content-type": form.contentType }, async (headers) => {
    const r = await upstreamRequest(up.name, up.url("/audio/transcriptions", model), { method: "POST", headers, body: form.body, signal: ctx.signal });
    if (!r.ok) throw await upstreamError(up.name, r);
    return r;
  });
  if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    yield* transcriptEvents(up.name, res, ctx);
    return;
  }
  const j: unknown = await res.json();
  if (!isObj(j)) throw upstreamMalformed(up.name, "a transcription that is not a JSON object");
  const segments = Array.isArray(j["segments"]) ? j["segments"].filter(isObj) : [];
  if (segments.length > 0) {
    for (const s of segments) {
      yield transcript(typeof s["text"] === "string" ? s["text"].trim() : "", TranscriptDelta_Kind.KIND_FINAL, num(s["start"]), num(s["end"]));
    }
  } else if (typeof j["text"] === "string" && j["text"]) {
    yield transcript(j["text"], TranscriptDelta_Kind.KIND_FINAL, 0, num(j["duration"]));
  }
  const u = isObj(j["usage"]) ? j["usage"] : {};
  yield usagePayload({
    inputTokens: num(u["input_tokens"]),
    outputTokens: num(u["output_tokens"]),
    inputAudioSeconds: num(u["seconds"]) || num(j["duration"]),
  });
  yield finishPayload(FinishReason.REASON_STOP);
}

/** The fields of the completed request that were not sent before the file: `language` and `prompt` learned late. */
function lateFields(started: TranscribeConfig, done: TranscribeConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!started.language && done.language) out.push(["language", done.language]);
  if (!started.prompt && done.prompt) out.push(["prompt", done.prompt]);
  return out;
}

/** The audio as it is sent up, each piece telling the call it is alive. */
async function* counted(audio: AsyncIterable<Uint8Array>, ctx: ProviderContext): AsyncGenerator<Uint8Array> {
  for await (const piece of audio) {
    ctx.alive?.();
    yield piece;
  }
}

/**
 * A streamed transcription's SSE, read like every upstream stream
 * ({@link SsePushStream}: comments and pings count as life, the body's end
 * is drained after `transcript.text.done` so the connection is reused).
 */
function transcriptEvents(provider: string, res: UpstreamResponse, ctx: ProviderContext): AsyncIterableIterator<ChunkPayload> {
  let sawDelta = false;
  return new SsePushStream<ChunkPayload>(
    res.stream,
    provider,
    {
      onEvent(e, emit) {
        if (e.data === "[DONE]") throw upstreamMalformed(provider, "a transcription stream without transcript.text.done");
        const j = parseEventJson(e.data, provider);
        if (!isObj(j)) return false;
        if (j["type"] === "transcript.text.delta" && typeof j["delta"] === "string") {
          sawDelta = true;
          emit(transcript(j["delta"], TranscriptDelta_Kind.KIND_DELTA, 0, 0));
        } else if (j["type"] === "transcript.text.done") {
          if (!sawDelta && typeof j["text"] === "string" && j["text"]) emit(transcript(j["text"], TranscriptDelta_Kind.KIND_FINAL, 0, 0));
          const u = isObj(j["usage"]) ? j["usage"] : {};
          emit(usagePayload({ inputTokens: num(u["input_tokens"]), outputTokens: num(u["output_tokens"]), totalTokens: num(u["total_tokens"]) }));
          emit(finishPayload(FinishReason.REASON_STOP));
          return true;
        } else if (isObj(j["error"])) throw upstreamStreamError(provider, j["error"]);
        return false;
      },
      onBodyEnd() {
        throw upstreamMalformed(provider, "a transcription stream without transcript.text.done");
      },
      readError: (e) => streamReadError(provider, e, ctx.signal),
    },
    DEFAULT_MAX_EVENT_BYTES,
    ctx.alive,
  );
}

function transcript(text: string, kind: TranscriptDelta_Kind, start: number, end: number): ChunkPayload {
  return { $case: "transcript", value: { text, kind, startSeconds: start, endSeconds: end } };
}

/** An upstream answer that is not what the API promises. */
function upstreamMalformed(provider: string, what: string): SpillwayError {
  return new SpillwayError(Code.DataLoss, `${provider}: upstream sent ${what}`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
}

function upstreamStreamError(provider: string, e: Obj): SpillwayError {
  return new SpillwayError(Code.Unavailable, `${provider}: ${typeof e["message"] === "string" ? e["message"] : "upstream error"}`, {
    httpStatus: 502,
    reason: typeof e["code"] === "string" ? e["code"] : "upstream_error",
  });
}

/**
 * The audio methods of an OpenAI-compatible provider, to spread into it:
 * `{ ...openAiAudioMethods(upstream) }`.
 */
export function openAiAudioMethods(up: OpenAiUpstream): Pick<Provider, "synthesize" | "transcribe" | "transcribeLateFields"> {
  return {
    synthesize: (model, req, ctx) => openAiSpeech(up, model, req, ctx),
    transcribeLateFields: true,
    transcribe: (model, config, audio, ctx, completed) => openAiTranscribe(up, model, config, audio, ctx, completed),
  };
}
