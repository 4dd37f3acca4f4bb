import { AudioEncoding } from "../../../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../../../gen/spillway/v1/request.js";
import { Code } from "../../../../engine/code.js";
import { invalidArgument, SpillwayError } from "../../../../engine/errors.js";
import type { MultipartForm, UploadedFile } from "../../multipart.js";

/** The `response_format`s of OpenAI's transcription API that Spillway produces. */
export const TRANSCRIPT_FORMATS = ["json", "text", "verbose_json", "srt", "vtt"] as const;
/** One of {@link TRANSCRIPT_FORMATS}. */
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/** A validated transcription request. */
export interface ParsedTranscription {
  readonly config: TranscribeConfig;
  readonly file: UploadedFile;
  readonly stream: boolean;
  readonly format: TranscriptFormat;
}

function one(form: MultipartForm, name: string): string | undefined {
  return form.fields.get(name)?.[0];
}

/**
 * Validates a transcription form: a non-empty `file`, a `model`, and the
 * optional `stream`, `response_format`, `language` and `prompt`. Errors
 * are 400s naming the field.
 */
export function parseTranscription(form: MultipartForm): ParsedTranscription {
  const file = form.file;
  if (!file || file.field !== "file") {
    throw new SpillwayError(Code.InvalidArgument, "Missing required parameter: 'file'.", {
      param: "file",
      reason: "missing_required_parameter",
    });
  }
  if (file.size === 0) throw invalidArgument("The audio file is empty.", "file");
  const model = one(form, "model");
  if (!model) {
    throw new SpillwayError(Code.InvalidArgument, "Missing required parameter: 'model'.", {
      param: "model",
      reason: "missing_required_parameter",
    });
  }
  const streamText = (one(form, "stream") ?? "false").toLowerCase();
  if (streamText !== "true" && streamText !== "false") {
    throw invalidArgument(`Invalid 'stream': expected true or false, got '${streamText}'.`, "stream");
  }
  const format = one(form, "response_format") ?? "json";
  if (!(TRANSCRIPT_FORMATS as readonly string[]).includes(format)) {
    throw invalidArgument(`Invalid 'response_format' '${format}': expected one of ${TRANSCRIPT_FORMATS.join(", ")}.`, "response_format");
  }
  return {
    config: {
      model,
      language: one(form, "language") ?? "",
      prompt: one(form, "prompt") ?? "",
      encoding: AudioEncoding.AUDIO_ENCODING_UNSPECIFIED,
      sampleRate: 0,
      filename: file.filename,
      mimeType: file.mimeType,
    },
    file,
    stream: streamText === "true",
    format: format as TranscriptFormat,
  };
}
