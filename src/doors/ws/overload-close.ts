import { OVERLOADED } from "../../engine/adaptive-limit.js";
import type { SpillwayError } from "../../engine/errors.js";
import { openAiErrorObject } from "../http/shapes/openai/errors.js";
import type { Outbox } from "./outbox.js";

/**
 * The close code of a realtime session refused for overload: 1013 "Try
 * Again Later" (RFC 6455 registry), so a client knows to reconnect later
 * rather than treat it as a fault.
 */
export const OVERLOAD_CLOSE_CODE = 1013;

/** A socket that can be closed with a code. */
interface Closable {
  end(code: number, reason: string): void;
}

/**
 * Closes a realtime session after a refusal for overload (the `error` event
 * has been sent): the "error event + close", so a refused client
 * leaves instead of holding an idle session on a process past its capacity.
 * A socket already gone is left alone. Give the session's `outbox` so its
 * batched events are flushed first.
 */
export function closeForOverload(socket: Closable, outbox?: Outbox): void {
  // The outbox may batch a turn's events: what was sent (the error) goes on the wire before the close.
  outbox?.flush();
  try {
    socket.end(OVERLOAD_CLOSE_CODE, "server overloaded");
  } catch {
    // uWS throws on a socket that has already closed: nothing left to do.
  }
}

/**
 * Refuses a `response.create` for overload: an `error` event with code
 * `server_overloaded` (the message of the refusal `err` — the stream cap's,
 * the loop's or the adaptive limit's, from `Admission.refusal()`; the
 * adaptive limit's when not given — and `event_id` of the client event),
 * flushed, then {@link closeForOverload}.
 */
export function refuseForOverload(outbox: Outbox, socket: Closable, eventId: string | null, err: SpillwayError = OVERLOADED): void {
  outbox.send({ type: "error", error: { ...openAiErrorObject(err), event_id: eventId } });
  closeForOverload(socket, outbox);
}
