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
} as const;

/** One phase of {@link Phase}. */
export type Phase = (typeof Phase)[keyof typeof Phase];

const phases = channel(PHASE_CHANNEL);

/**
 * Publishes `phase` for the request in flight on {@link PHASE_CHANNEL}. With
 * no subscriber (the default) it is one property read and a branch.
 */
export function publishPhase(phase: Phase): void {
  if (phases.hasSubscribers) phases.publish(phase);
}
