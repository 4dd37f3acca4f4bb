import { Code } from "../engine/code.js";
import { SpillwayError } from "../engine/errors.js";

/**
 * The error for audio a client sent that cannot be used: an unknown format,
 * a corrupt file, or a format that needs a missing tool. A 400 naming the
 * problem, with `param` set to the request field that carried the audio.
 */
export function audioInputError(message: string, param = "file"): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, message, { param, reason: "invalid_audio" });
}
