import { z } from "zod";
import type { SynthesizeRequest } from "../../../../gen/spillway/v1/request.js";
import { encodingOf, SPEECH_FORMATS, type SpeechFormat } from "../../../../audio/encode.js";
import { DEFAULT_OUTPUT_RATE } from "../../../../audio/pcm.js";
import { Code } from "../../../../engine/code.js";
import { SpillwayError } from "../../../../engine/errors.js";
import { validate } from "../../validation.js";

/** The body of `POST /v1/audio/speech`, as far as Spillway checks it. */
export const speechSchema = z.looseObject({
  model: z.string().min(1),
  input: z.string().trim().min(1, "must not be empty").max(4096, "must be at most 4096 characters"),
  voice: z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })], "must be a voice name or an object with an id"),
  instructions: z.string().max(4096).nullish(),
  response_format: z.enum(SPEECH_FORMATS).nullish(),
  speed: z.number().min(0.25).max(4).nullish(),
  stream_format: z.enum(["sse", "audio"]).nullish(),
});

/** A validated speech request. */
export interface ParsedSpeech {
  readonly request: SynthesizeRequest;
  readonly format: SpeechFormat;
  /** `sse`: base64 audio in `speech.audio.delta` events; `audio`: the bytes as the body. */
  readonly streamFormat: "sse" | "audio";
}

/** Validates a speech body into an engine request; errors name the field at fault. */
export function parseSpeech(body: unknown): ParsedSpeech {
  // zod reports a missing union as "invalid input": name it like any other missing field.
  if (typeof body === "object" && body !== null && (body as Record<string, unknown>)["voice"] === undefined) {
    throw new SpillwayError(Code.InvalidArgument, "Missing required parameter: 'voice'.", {
      param: "voice",
      reason: "missing_required_parameter",
    });
  }
  const b = validate(speechSchema, body);
  const format = b.response_format ?? "mp3";
  return {
    request: {
      model: b.model,
      input: b.input,
      voice: typeof b.voice === "string" ? b.voice : b.voice.id,
      encoding: encodingOf(format),
      speed: b.speed ?? 1,
      sampleRate: DEFAULT_OUTPUT_RATE,
      instructions: b.instructions ?? "",
    },
    format,
    streamFormat: b.stream_format ?? "audio",
  };
}
