import { channel } from "node:diagnostics_channel";

/**
 * The `node:diagnostics_channel` on which a streamed request announces its
 * phases, from its arrival at a door to its first flushed bytes. Each
 * message is one {@link Phase} (a number). Nothing in the engine, the
 * providers or the doors reads it; observability (`observability/phase-trace.ts`,
 * the opt-in time-to-first-chunk probe) subscribes, so the low layers depend
 * on nothing above them.
 */
export const PHASE_CHANNEL = "spillway:phase";

/** The phases of a streamed request, in order. */
export const Phase = {
  Arrived: 0,
  BodyRead: 1,
  Validated: 2,
  AttemptStarted: 3,
  ProviderOpened: 4,
  UpstreamSent: 5,
  UpstreamHeaders: 6,
  FirstChunk: 7,
  FirstFlush: 8,
  /** Keyed only: the first write's completion reported by the transport (gRPC: the HTTP/2 write callback, after the socket took the bytes). */
  FirstWritten: 9,
} as const;

/** One phase of {@link Phase}. */
export type Phase = (typeof Phase)[keyof typeof Phase];

const phases = channel(PHASE_CHANNEL);

/** Whether anything subscribes to {@link PHASE_CHANNEL}. */
export function phaseChannelActive(): boolean {
  return phases.hasSubscribers;
}

/**
 * A phase of one identified request ({@link publishPhase} with a key): the
 * door's own object for the request (its exchange, its call), so a
 * subscriber can follow many requests at once.
 */
export interface KeyedPhase {
  readonly phase: Phase;
  readonly key: object;
  /** The door that published it (`sse`, `grpc`, `ws`). */
  readonly door: string;
}

/**
 * Publishes `phase` on {@link PHASE_CHANNEL}: a bare number for "the request
 * in flight" (engine and provider phases, which know no door object), or,
 * with `key`, a {@link KeyedPhase} (door phases: arrived, first chunk, first
 * flush). With no subscriber (the default) it is one property read and a
 * branch; nothing is allocated.
 */
export function publishPhase(phase: Phase, key?: object, door = ""): void {
  if (phases.hasSubscribers) phases.publish(key === undefined ? phase : ({ phase, key, door } satisfies KeyedPhase));
}
