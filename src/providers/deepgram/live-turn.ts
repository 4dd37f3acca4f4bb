/**
 * One turn on a session's Deepgram socket (live-connection.ts): the audio
 * the turn's call pushed (kept until the turn completes, to be sent again
 * after a reconnect), where it started on the current socket, and the
 * payloads routed to it, read by the call's stream (live-session.ts).
 */
import type { SpillwayError } from "../../engine/errors.js";
import type { ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { LiveResults } from "./live-results.js";

/** Longest wait for a turn's results after its `Finalize` when Deepgram sends no `from_finalize` (ms); 1/5 of it when nothing was heard. */
export const FINALIZE_WAIT_MS = 5000;

/** What a turn needs of the connection that carries it. */
export interface LiveTurnOwner {
  /** Sends what can be sent now. */
  pump(): void;
  /** The turn is done (and the turns before it). */
  completeTurn(turn: LiveTurn): void;
  /** The turn leaves the queue (failed). */
  dropTurn(turn: LiveTurn): void;
  /** The turn's consumer went away. */
  releaseTurn(turn: LiveTurn): void;
}

/** One turn on a {@link LiveTurnOwner} (the session's connection). */
export class LiveTurn {
  readonly results = new LiveResults();
  /** The turn's audio (kept until the turn completes, to send again after a reconnect). */
  readonly audio: Uint8Array[] = [];
  bytes = 0;
  /** How many of `audio`'s pieces went up on the current socket, and their bytes. */
  sentPieces = 0;
  sentBytes = 0;
  /** Byte position of the turn's first byte on the current socket (undefined: not started there). */
  startByte: number | undefined;
  inputEnded = false;
  finalizeSent = false;
  complete = false;
  released = false;
  reconnects = 0;
  /** End (turn seconds) of the last final result reported: finals up to it are not repeated after a reconnect. */
  finalEnd = -1;
  private out: ChunkPayload[][] = [];
  private error: SpillwayError | undefined;
  private wake: (() => void) | undefined;
  private waitTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly conn: LiveTurnOwner,
    readonly ctx: ProviderContext,
  ) {}

  /** Bytes pushed and not sent on the current socket yet. */
  get unsentBytes(): number {
    return this.bytes - this.sentBytes;
  }

  /** Adds audio (sent when the turn is the one sending). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.inputEnded || this.complete) return;
    this.audio.push(bytes);
    this.bytes += bytes.length;
    this.conn.pump();
  }

  /** The pieces not sent yet, marked sent: what one frame carries. */
  takeUnsent(): Uint8Array[] {
    const pieces = this.audio.slice(this.sentPieces);
    this.sentPieces = this.audio.length;
    this.sentBytes = this.bytes;
    return pieces;
  }

  /** Nothing of the turn went up on the current socket (a reconnect sends it all again). */
  rewind(): void {
    this.startByte = undefined;
    this.sentPieces = 0;
    this.sentBytes = 0;
    this.finalizeSent = false;
  }

  endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.conn.pump();
  }

  /** Next payloads, undefined once complete; throws the turn's error. */
  async next(): Promise<ChunkPayload[] | undefined> {
    for (;;) {
      const b = this.out.shift();
      if (b) return b;
      if (this.error) throw this.error;
      if (this.complete) return undefined;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  deliver(payloads: ChunkPayload[]): void {
    if (payloads.length === 0 || this.released || this.complete) return;
    this.out.push(payloads);
    this.signal();
  }

  /** `Finalize` went up: wait for the results at most this long. */
  armWait(): void {
    clearTimeout(this.waitTimer);
    const ms = this.results.heard || this.results.pending ? FINALIZE_WAIT_MS : FINALIZE_WAIT_MS / 5;
    this.waitTimer = setTimeout(() => this.conn.completeTurn(this), ms);
    this.waitTimer.unref();
  }

  finish(): void {
    clearTimeout(this.waitTimer);
    this.complete = true;
    this.signal();
  }

  /** The call was aborted: the stream throws `e`; the turn stays queued until Deepgram is done with its audio. */
  abort(e: SpillwayError): void {
    this.error ??= e;
    this.signal();
  }

  fail(e: SpillwayError): void {
    if (this.complete) return;
    this.error ??= e;
    this.conn.dropTurn(this);
    this.finish();
  }

  /** The consumer is done (completed, failed or cancelled). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.out = [];
    this.conn.releaseTurn(this);
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
