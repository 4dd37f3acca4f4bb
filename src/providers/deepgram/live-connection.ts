/**
 * One Deepgram live socket for a whole door session (a realtime session),
 * carrying its turns one after the other instead of a socket per turn
 * (each turn's call: live-session.ts; its state: live-turn.ts). Opened at
 * the session's first turn; between turns no audio flows and a `KeepAlive`
 * goes up whenever nothing was sent for `keepAliveMs` (Deepgram closes a
 * socket that got neither audio nor a text message for 10 s, NET-0001); at
 * a turn's end `Finalize` makes Deepgram flush its final results without
 * closing; when the session ends `CloseStream` goes up and the socket is
 * closed.
 *
 * Framing: audio goes up in frames of about `chunkMs`; while the session's
 * turn detector hears speech (its {@link SpeechActivity}, when the door
 * runs one) in frames of about `speechChunkMs` (larger: fewer socket
 * writes), and at the first quiet frame what is held goes up at once, so
 * Deepgram's endpointing hears the end of speech as soon as the VAD has
 * (the frames after it are `chunkMs` ones again). The end of a turn's
 * input always flushes at once. Framing never changes the bytes: the
 * pieces go up whole, in order.
 *
 * Turns are kept in order: a turn's audio goes up only once the turns before
 * it ended their input (each followed by its `Finalize`), so on the socket's
 * audio timeline each turn has a span, and every message is routed to the
 * turn whose span holds its time (`start` of `Results`, `timestamp` of
 * `SpeechStarted`, `last_word_end` of `UtteranceEnd`); positions are
 * reported relative to the turn. A turn is complete when its `from_finalize`
 * result comes, when a message of a later turn comes, at once when its
 * speech had already ended (`speech_final` / `UtteranceEnd`: Deepgram may
 * send nothing for a `Finalize` with little audio buffered, as it
 * documents), or at the latest `FINALIZE_WAIT_MS` (live-turn.ts) after its
 * `Finalize`.
 *
 * If Deepgram closes the socket (any close the gateway did not ask for, an
 * `Error` message excepted), a new one is opened and the unfinished turns'
 * audio is sent again; final results already reported are not repeated. A
 * turn fails (its stream throws) only when that reconnect fails, or after
 * {@link MAX_RECONNECTS} of them within the turn.
 */
import { Code } from "../../engine/code.js";
import { SpillwayError, stackless } from "../../engine/errors.js";
import type { ProviderContext } from "../../engine/provider.js";
import type { ProviderSession, SessionResource } from "../../engine/provider-session.js";
import { joinPieces } from "../../audio/pcm.js";
import { speechActivityOf, type SpeechActivity } from "../../audio/speech-activity.js";
import type { Obj } from "../shared/json.js";
import { jsonMessages, socketClosedError, type UpstreamSocket } from "../shared/upstream-socket.js";
import { deepgramMalformed, deepgramSocketError } from "./errors.js";
import { LiveTurn } from "./live-turn.js";
import type { DeepgramUpstream } from "./upstream.js";

/** Reconnects allowed while one turn is unfinished. */
export const MAX_RECONNECTS = 2;
/** A message time this close before a turn's start still belongs to it (rounding of Deepgram's seconds). */
const EPSILON_S = 0.002;

/** The session's socket and its turns (see the file comment). */
export class LiveConnection implements SessionResource {
  /** Sockets opened so far (1 unless Deepgram closed one). */
  sockets = 0;
  /** KeepAlive messages sent. */
  keepAlives = 0;
  /** The session ended or the connection failed for good: the next turn makes a new one. */
  finished = false;
  private socket: UpstreamSocket | undefined;
  private connecting: Promise<void> | undefined;
  /** Unfinished turns in order (the first ones have started on the socket). */
  private turns: LiveTurn[] = [];
  /** Audio bytes sent on the current socket (its timeline). */
  private written = 0;
  private lastSendAt = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Frame size (bytes) between speech, and while the VAD hears speech. */
  private readonly chunkBytes: number;
  private readonly speechChunkBytes: number;
  /** The door's voice activity (undefined when it runs no VAD: framing is `chunkMs` throughout). */
  private readonly activity: SpeechActivity | undefined;
  private readonly unsubscribe: (() => void) | undefined;
  /**
   * Set from the VAD's first quiet frame to the end of that turn of the
   * event loop: what is held, and what arrives meanwhile (a piece still on
   * its way from the door), goes up at once whatever its size.
   */
  private pausing = false;
  private pauseEnd: NodeJS.Immediate | undefined;
  /** Labels of the key that opened the socket, copied to each turn's call. */
  private labels: Record<string, string> = {};

  constructor(
    private readonly up: DeepgramUpstream,
    private readonly url: string,
    private readonly bytesPerSecond: number,
    private readonly session: ProviderSession,
    private readonly key: string,
  ) {
    this.chunkBytes = Math.floor((bytesPerSecond * up.settings.chunkMs) / 1000);
    this.speechChunkBytes = Math.max(this.chunkBytes, Math.floor((bytesPerSecond * up.settings.speechChunkMs) / 1000));
    this.activity = speechActivityOf(session);
    this.unsubscribe = this.activity?.subscribe((speaking) => {
      if (!speaking) this.pause();
    });
  }

  /** The VAD's first quiet frame: what is held goes up now (see `pausing`). */
  private pause(): void {
    this.pausing = true;
    this.pauseEnd ??= setImmediate(() => {
      this.pauseEnd = undefined;
      this.pausing = false;
    });
    this.pump();
  }

  /** True while frames are `speechChunkMs` ones (the VAD hears speech), else `chunkMs`. */
  private get speechFrames(): boolean {
    return this.activity !== undefined && this.activity.speaking && this.speechChunkBytes > this.chunkBytes;
  }

  /** A new turn at the end of the queue; the socket is opened if there is none. */
  openTurn(ctx: ProviderContext): LiveTurn {
    const turn = new LiveTurn(this, ctx);
    Object.assign(ctx.labels, this.labels);
    this.turns.push(turn);
    this.ensureSocket(turn.ctx);
    return turn;
  }

  /** Sends what can be sent: the sending turn's audio (in frames, see the file comment), its `Finalize`, then the next turn's. */
  pump(): void {
    const socket = this.socket;
    if (!socket?.isOpen) return;
    for (const turn of this.turns) {
      if (turn.finalizeSent) continue;
      if (turn.startByte === undefined) turn.startByte = this.written;
      const unsent = turn.unsentBytes;
      if (unsent > 0) {
        const speech = this.speechFrames;
        if (unsent >= (speech ? this.speechChunkBytes : this.chunkBytes) || turn.inputEnded || turn.released || this.pausing) {
          this.write(socket, turn);
        } else {
          this.armFlush(speech ? this.up.settings.speechChunkMs : this.up.settings.chunkMs);
          return;
        }
      }
      if (!turn.inputEnded && !turn.released) return;
      // The turn's input is over (or it was cancelled): Finalize separates its audio from the next turn's.
      turn.finalizeSent = true;
      if (turn.bytes === 0) {
        this.completeTurn(turn);
        continue;
      }
      this.send(socket, '{"type":"Finalize"}');
      if (!turn.released && turn.results.heard && !turn.results.pending) this.completeTurn(turn);
      else turn.armWait();
    }
  }

  /** A frame that has not filled goes up `ms` after its first piece (a source slower than real time, or one that stopped). */
  private armFlush(ms: number): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const t = this.turns.find((x) => !x.finalizeSent);
      if (t && this.socket?.isOpen) this.write(this.socket, t);
      this.pump();
    }, ms);
    this.flushTimer.unref();
  }

  /** Sends the turn's unsent pieces as one binary frame. */
  private write(socket: UpstreamSocket, turn: LiveTurn): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const bytes = turn.unsentBytes;
    if (bytes === 0) return;
    const pieces = turn.takeUnsent();
    // Pieces that lie side by side (the door's input buffer decodes into one store) go up without a copy.
    const frame = joinPieces(pieces, bytes);
    this.send(socket, frame);
    this.written += frame.length;
    turn.ctx.alive?.();
  }

  private send(socket: UpstreamSocket, data: string | Uint8Array): void {
    socket.send(data);
    this.lastSendAt = performance.now();
  }

  /** A turn is done: its stream ends; the turns before it are done too (Deepgram answers in order). */
  completeTurn(turn: LiveTurn): void {
    const i = this.turns.indexOf(turn);
    if (i < 0) return;
    for (const t of this.turns.splice(0, i + 1)) t.finish();
    this.pump();
  }

  /** A turn failed: it leaves the queue. */
  dropTurn(turn: LiveTurn): void {
    const i = this.turns.indexOf(turn);
    if (i >= 0) this.turns.splice(i, 1);
  }

  /** The turn's consumer went away: an unfinished turn still gets its `Finalize` (its results are dropped). */
  releaseTurn(turn: LiveTurn): void {
    if (turn.complete) return;
    if (turn.startByte === undefined) {
      this.dropTurn(turn);
      turn.finish();
      this.pump();
      return;
    }
    this.pump();
  }

  /** The session ended: `CloseStream`, then the socket is closed. */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    this.unsubscribe?.();
    clearImmediate(this.pauseEnd);
    clearTimeout(this.keepAliveTimer);
    clearTimeout(this.flushTimer);
    const socket = this.socket;
    this.socket = undefined;
    for (const t of this.turns.splice(0)) t.finish();
    if (socket?.isOpen) socket.send('{"type":"CloseStream"}');
    socket?.close(1000, "session ended");
  }

  private ensureSocket(ctx: ProviderContext): void {
    if (this.socket || this.connecting || this.finished) return;
    const labels: Record<string, string> = {};
    this.connecting = this.up
      .connect({ ...ctx, signal: this.session.signal, labels }, this.url)
      .then((socket) => {
        this.connecting = undefined;
        if (this.finished) {
          socket.close(1000, "session ended");
          return;
        }
        this.sockets++;
        this.labels = labels;
        for (const t of this.turns) Object.assign(t.ctx.labels, labels);
        this.socket = socket;
        this.written = 0;
        this.lastSendAt = performance.now();
        this.armKeepAlive(this.up.settings.keepAliveMs);
        void this.read(socket);
        this.pump();
      })
      .catch((e: unknown) => {
        this.connecting = undefined;
        this.failAll(SpillwayError.from(e));
      });
  }

  /** One lazy timer: a `KeepAlive` when nothing went up for `keepAliveMs`. */
  private armKeepAlive(ms: number): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = setTimeout(() => {
      const socket = this.socket;
      if (!socket?.isOpen || this.finished) return;
      const keep = this.up.settings.keepAliveMs;
      const quiet = performance.now() - this.lastSendAt;
      if (quiet >= keep - 1) {
        this.send(socket, '{"type":"KeepAlive"}');
        this.keepAlives++;
        this.armKeepAlive(keep);
      } else {
        this.armKeepAlive(keep - quiet);
      }
    }, Math.max(1, ms));
    this.keepAliveTimer.unref();
  }

  private async read(socket: UpstreamSocket): Promise<void> {
    /** An `Error` message or a malformed one: the stream is broken, not just closed; no reconnect. */
    let fatal: SpillwayError | undefined;
    let lost: SpillwayError | undefined;
    // A sentinel made per connection, thrown (and reported) only if a message is not JSON: no stack to capture.
    const malformed = stackless(() => deepgramMalformed(this.up.name, "a message that is not JSON"));
    try {
      for await (const j of jsonMessages(socket, malformed)) {
        if (j["type"] === "Error") {
          fatal = deepgramSocketError(this.up.name, j);
          break;
        }
        this.route(j);
      }
    } catch (e) {
      if (e === malformed) fatal = malformed;
      else lost = SpillwayError.from(e);
    }
    if (this.socket !== socket || this.finished) return;
    this.socket = undefined;
    clearTimeout(this.keepAliveTimer);
    socket.close();
    const closed = fatal ?? lost ?? socketClosedError(this.up.name, socket.closed, "live transcription");
    // Refused audio (1008 DATA-0000 and the like) would be refused again.
    if (fatal || closed.code === Code.InvalidArgument || this.session.signal.aborted) this.failAll(closed);
    else this.reconnect(closed);
  }

  /** Deepgram closed the socket: open another and send the unfinished turns' audio again, or fail them. */
  private reconnect(closed: SpillwayError): void {
    const started = this.turns.filter((t) => t.startByte !== undefined);
    if (started.some((t) => t.reconnects >= MAX_RECONNECTS)) {
      this.failAll(closed);
      return;
    }
    // Cancelled turns are not sent again: nobody reads their results.
    for (const t of this.turns.filter((x) => x.released)) {
      this.dropTurn(t);
      t.finish();
    }
    for (const t of this.turns) {
      if (t.startByte !== undefined) t.reconnects++;
      t.rewind();
    }
    if (this.turns.length > 0) this.ensureSocket(this.turns[0]!.ctx);
  }

  private failAll(e: SpillwayError): void {
    this.finished = true;
    this.session.delete(this.key, this);
    this.unsubscribe?.();
    clearImmediate(this.pauseEnd);
    clearTimeout(this.keepAliveTimer);
    clearTimeout(this.flushTimer);
    for (const t of this.turns.splice(0)) t.fail(e);
    this.socket?.close(1000, "failed");
    this.socket = undefined;
  }

  /** Routes one message to the turn whose audio span holds its time. */
  private route(m: Obj): void {
    const type = m["type"];
    let at: number;
    if (type === "Results") at = num(m["start"]);
    else if (type === "SpeechStarted") at = num(m["timestamp"]);
    else if (type === "UtteranceEnd") at = num(m["last_word_end"]) - EPSILON_S;
    else return;
    let target: LiveTurn | undefined;
    for (const t of this.turns) {
      if (t.startByte === undefined) break;
      if (t.startByte / this.bytesPerSecond <= at + EPSILON_S) target = t;
      else break;
    }
    if (!target) return;
    // A message of a later turn: the turns before it have all their results.
    const i = this.turns.indexOf(target);
    if (i > 0) for (const t of this.turns.splice(0, i)) t.finish();
    const r = target.results;
    r.offset = target.startByte! / this.bytesPerSecond;
    if (type === "Results") {
      const end = Math.max(0, num(m["start"]) - r.offset) + num(m["duration"]);
      // Already reported before a reconnect: the audio was sent again.
      if (end <= target.finalEnd + EPSILON_S) return;
      if (m["is_final"] === true) target.finalEnd = end;
    }
    const payloads = r.map(m);
    if (!target.released) target.deliver(payloads);
    if (target.finalizeSent && (m["from_finalize"] === true || (r.heard && !r.pending))) this.completeTurn(target);
  }
}

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}
