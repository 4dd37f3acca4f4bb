import { invalidArgument } from "../../engine/errors.js";
import type { GenerateRequest, SynthesizeRequest } from "../../gen/spillway/v1/request.js";

const ROLES: ReadonlySet<string> = new Set(["system", "developer", "user", "assistant", "tool"]);

/**
 * Checks what the protobuf types cannot say about a GenerateRequest, with
 * the same limits as the HTTP door; throws `InvalidArgument` naming the
 * field. `model` and empty `messages` are checked by the engine for every door.
 */
export function validateGenerate(req: GenerateRequest): void {
  req.messages.forEach((m, i) => {
    if (!ROLES.has(m.role)) {
      throw invalidArgument(
        `messages[${i}].role must be one of ${[...ROLES].join(", ")}, got '${m.role}'`,
        `messages[${i}].role`,
      );
    }
  });
  if (req.temperature !== undefined && !(req.temperature >= 0 && req.temperature <= 2)) {
    throw invalidArgument(`temperature must be between 0 and 2, got ${req.temperature}`, "temperature");
  }
  if (req.topP !== undefined && !(req.topP >= 0 && req.topP <= 1)) {
    throw invalidArgument(`top_p must be between 0 and 1, got ${req.topP}`, "top_p");
  }
  if (req.stop.length > 4) throw invalidArgument(`stop takes at most 4 sequences, got ${req.stop.length}`, "stop");
}

/** Checks a SynthesizeRequest; throws `InvalidArgument` naming the field. */
export function validateSynthesize(req: SynthesizeRequest): void {
  if (!req.input) throw invalidArgument("input must not be empty: it is the text to speak", "input");
  if (req.speed !== 0 && !(req.speed >= 0.25 && req.speed <= 4)) {
    throw invalidArgument(`speed must be between 0.25 and 4.0, got ${req.speed}`, "speed");
  }
}
