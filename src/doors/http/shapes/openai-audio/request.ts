import { AudioEncoding } from "../../../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../../../gen/spillway/v1/request.js";
import { Code } from "../../../../engine/code.js";
import { invalidArgument, SpillwayError } from "../../../../engine/errors.js";
import type { FilePart } from "../../multipart.js";

/** The `response_format`s of OpenAI's transcription API that Spillway produces. */
export const TRANSCRIPT_FORMATS = ["json", "text", "verbose_json", "srt", "vtt"] as const;
/** One of {@link TRANSCRIPT_FORMATS}. */
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/**
 * A request header naming the transcription model, so that recognition can
 * start at the file's first byte whatever the order of the form's fields
 * (the openai SDK sends `file` before `model`). A `model` field, when also
 * sent, must name the same model.
 */
export const MODEL_HEADER = "x-spillway-model";

/** A validated transcription request. */
export interface ParsedTranscription {
  readonly config: TranscribeConfig;
  readonly stream: boolean;
  readonly format: TranscriptFormat;
}

/**
 * What is known when the file part begins and its model is known already
 * (a `model` field before the file, or {@link MODEL_HEADER}): enough to start
 * recognizing. `stream` is undefined when the field has not come yet.
 */
export interface EarlyTranscription {
  readonly config: TranscribeConfig;
  readonly stream: boolean | undefined;
}

type Fields = ReadonlyMap<string, readonly string[]>;

function one(fields: Fields, name: string): string | undefined {
  return fields.get(name)?.[0];
}

function missing(param: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, `Missing required parameter: '${param}'.`, { param, reason: "missing_required_parameter" });
}

/** The model from the form and the header; both set and different is a 400 naming `model`. */
function modelOf(fields: Fields, header: string | undefined): string | undefined {
  const field = one(fields, "model");
  if (field && header && field !== header) {
    throw invalidArgument(`The form's 'model' ('${field}') differs from the ${MODEL_HEADER} header ('${header}'): send one, or the same in both.`, "model");
  }
  return header || field || undefined;
}

function streamOf(fields: Fields): boolean | undefined {
  const text = one(fields, "stream")?.toLowerCase();
  if (text === undefined) return undefined;
  if (text !== "true" && text !== "false") throw invalidArgument(`Invalid 'stream': expected true or false, got '${text}'.`, "stream");
  return text === "true";
}

function formatOf(fields: Fields): TranscriptFormat {
  const format = one(fields, "response_format") ?? "json";
  if (!(TRANSCRIPT_FORMATS as readonly string[]).includes(format)) {
    throw invalidArgument(`Invalid 'response_format' '${format}': expected one of ${TRANSCRIPT_FORMATS.join(", ")}.`, "response_format");
  }
  return format as TranscriptFormat;
}

function fileOf(file: FilePart | undefined): FilePart {
  if (!file || file.field !== "file") throw missing("file");
  return file;
}

function configOf(fields: Fields, model: string, file: FilePart, live: boolean): TranscribeConfig {
  return {
    model,
    language: one(fields, "language") ?? "",
    prompt: one(fields, "prompt") ?? "",
    encoding: AudioEncoding.AUDIO_ENCODING_UNSPECIFIED,
    sampleRate: 0,
    filename: file.filename,
    mimeType: file.mimeType,
    live,
  };
}

/**
 * Validates a complete transcription form: a `file` part, a `model` (field
 * or header), and the optional `stream`, `response_format`, `language` and
 * `prompt`. Errors are 400s naming the field. The file is transcribed as a
 * whole (`live: false`).
 */
export function parseTranscription(fields: Fields, file: FilePart | undefined, headerModel?: string): ParsedTranscription {
  const part = fileOf(file);
  if (part.size() === 0) throw invalidArgument("The audio file is empty.", "file");
  const model = modelOf(fields, headerModel);
  if (!model) throw missing("model");
  const stream = streamOf(fields) ?? false;
  const format = formatOf(fields);
  return { config: configOf(fields, model, part, false), stream, format };
}

/**
 * When the file part begins: the request to start with at once, or
 * undefined when the file waits for the rest of the form. It starts early
 * when the model is known (a `model` field before the file, or
 * {@link MODEL_HEADER}) and either the caller asked — `stream=true` before
 * the file, or the header — or the model's provider takes fields that come
 * after the audio has begun (`lateFields`: an OpenAI-compatible upstream,
 * which gets them after the file in the same request). It is then `live`
 * unless `stream=false` came first. Otherwise a non-streamed form waits, as
 * it always did, so that fields after its file (the openai SDK writes them
 * in the object's order) still count. The fields sent so far are validated
 * (400s naming the field).
 */
export function parseAtFileStart(fields: Fields, file: FilePart | undefined, headerModel?: string, lateFields?: (model: string) => boolean): EarlyTranscription | undefined {
  const part = fileOf(file);
  const model = modelOf(fields, headerModel);
  const stream = streamOf(fields);
  if (!model || (stream !== true && !headerModel && !lateFields?.(model))) return undefined;
  formatOf(fields);
  return { config: configOf(fields, model, part, stream !== false), stream };
}

/**
 * At the end of a form whose recognition started early: the whole request.
 * A `model` after the file may not change the one the call started with.
 * With `lateFields` (the provider takes them after the audio: see
 * `Provider.transcribeLateFields`) a `language` or `prompt` after the file
 * is part of the request; without, one that differs from what recognition
 * started with is a 400 naming the field, saying to send it before the
 * file.
 */
export function parseAtFormEnd(fields: Fields, file: FilePart, early: EarlyTranscription, headerModel?: string, lateFields = false): ParsedTranscription {
  if (file.size() === 0) throw invalidArgument("The audio file is empty.", "file");
  const model = modelOf(fields, headerModel);
  const late = (param: string): SpillwayError =>
    invalidArgument(`'${param}' came after the file, once recognition had started: send it before the 'file' part.`, param);
  if (model !== early.config.model) throw late("model");
  const config = { ...early.config, language: one(fields, "language") ?? "", prompt: one(fields, "prompt") ?? "" };
  if (!lateFields && config.language !== early.config.language) throw late("language");
  if (!lateFields && config.prompt !== early.config.prompt) throw late("prompt");
  return { config, stream: streamOf(fields) ?? false, format: formatOf(fields) };
}
