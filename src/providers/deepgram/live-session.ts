/**
 * One Deepgram live socket for a whole door session (a realtime session),
 * carrying its turns one after the other instead of a socket per turn.
 * Opened at the session's first turn; between turns no audio flows and a
 * `KeepAlive` goes up whenever nothing was sent for `keepAliveMs` (Deepgram
 * closes a socket that got neither audio nor a text message for 10 s,
 * NET-0001); at a turn's end `Finalize` makes Deepgram flush its final
 * results without closing; when the session ends `CloseStream` goes up and
 * the socket is closed.
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
 * documents), or at the latest {@link FINALIZE_WAIT_MS} after its `Finalize`.
 *
 * If Deepgram closes the socket (any close the gateway did not ask for, an
 * `Error` message excepted), a new one is opened and the unfinished turns'
 * audio is sent again; final results already reported are not repeated. A
 * turn fails (its stream throws) only when that reconnect fails, or after
 * {@link MAX_RECONNECTS} of them within the turn.
 */
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import type { ProviderSession, SessionResource } from "../../engine/provider-session.js";
import { isObj, str, type Obj } from "../shared/json.js";
import { socketClosedError, type UpstreamSocket } from "../shared/upstream-socket.js";
import { deepgramMalformed } from "./errors.js";
import { openLiveAudio } from "./live-audio.js";
import { liveUrl } from "./live.js";
import { LiveResults } from "./live-results.js";
import type { DeepgramUpstream } from "./upstream.js";

/** Longest wait for a turn's results after its `Finalize` when Deepgram sends no `from_finalize` (ms); 1/5 of it when nothing was heard. */
export const FINALIZE_WAIT_MS = 5000;
/** Reconnects allowed while one turn is unfinished. */
export const MAX_RECONNECTS = 2;
/** A message time this close before a turn's start still belongs to it (rounding of Deepgram's seconds). */
const EPSILON_S = 0.002;

/** Streams a live transcript of one turn's `audio` over the session's Deepgram socket (opened at the first turn). */
export async function* deepgramSessionLive(
  up: DeepgramUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
  session: ProviderSession,
): AsyncGenerator<ChunkPayload> {
  const source = audio[Symbol.asyncIterator]();
  const format = await openLiveAudio(config, source);
  const url = liveUrl(up, model, config, format);
  const key = `deepgram-live:${up.name}:${url}`;
  let conn = session.get(key) as LiveConnection | undefined;
  if (!conn || conn.finished) {
    conn = new LiveConnection(up, url, format.bytesPerSecond, session, key);
    session.set(key, conn);
  }
  const turn = conn.openTurn(ctx);
  const onAbort = (): void => turn.abort(SpillwayError.from(ctx.signal.reason));
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  void feed(turn, source, (b) => format.convert(b), format.first, ctx);
  try {
    for (;;) {
      const batch = await turn.next();
      if (!batch) break;
      yield* batch;
    }
    yield usagePayload({ inputAudioSeconds: format.bytesPerSecond ? turn.bytes / format.bytesPerSecond : 0 });
    yield finishPayload(FinishReason.REASON_STOP);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    turn.release();
    void source.return?.()?.catch(() => undefined);
  }
}

async function feed(turn: LiveTurn, source: AsyncIterator<Uint8Array>, convert: (b: Uint8Array) => Uint8Array, first: readonly Uint8Array[], ctx: ProviderContext): Promise<void> {
  try {
    for (const b of first) turn.push(b);
    for (;;) {
      const r = await source.next();
      if (turn.released || ctx.signal.aborted) return;
      if (r.done) break;
      turn.push(convert(r.value));
    }
    // An input that ended because its call was cancelled is not a finished input.
    await new Promise((resolve) => setImmediate(resolve));
    if (turn.released || ctx.signal.aborted) return;
    turn.endInput();
  } catch (e) {
    turn.fail(SpillwayError.from(e));
  }
}

/** One turn on a {@link LiveConnection}. */
class LiveTurn {
  readonly results = new LiveResults();
  /** The turn's audio (kept until the turn completes, to send again after a reconnect). */
  readonly audio: Uint8Array[] = [];
  bytes = 0;
  /** How many of `audio`'s pieces went up on the current socket. */
  sentPieces = 0;
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
    private readonly conn: LiveConnection,
    readonly ctx: ProviderContext,
  ) {}

  /** Adds audio (sent when the turn is the one sending). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.inputEnded || this.complete) return;
    this.audio.push(bytes);
    this.bytes += bytes.length;
    this.conn.pump();
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
  private readonly chunkBytes: number;
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
  }

  /** A new turn at the end of the queue; the socket is opened if there is none. */
  openTurn(ctx: ProviderContext): LiveTurn {
    const turn = new LiveTurn(this, ctx);
    Object.assign(ctx.labels, this.labels);
    this.turns.push(turn);
    this.ensureSocket(turn.ctx);
    return turn;
  }

  /** Sends what can be sent: the sending turn's audio (in `chunkMs` frames), its `Finalize`, then the next turn's. */
  pump(): void {
    const socket = this.socket;
    if (!socket?.isOpen) return;
    for (const turn of this.turns) {
      if (turn.finalizeSent) continue;
      if (turn.startByte === undefined) turn.startByte = this.written;
      let unsent = 0;
      for (let i = turn.sentPieces; i < turn.audio.length; i++) unsent += turn.audio[i]!.length;
      if (unsent > 0 && (unsent >= this.chunkBytes || turn.inputEnded || turn.released)) {
        this.write(socket, turn, unsent);
      } else if (unsent > 0) {
        if (!this.flushTimer) {
          this.flushTimer = setTimeout(() => {
            this.flushTimer = undefined;
            const t = this.turns.find((x) => !x.finalizeSent);
            if (t && this.socket?.isOpen) this.write(this.socket, t, t.audio.slice(t.sentPieces).reduce((n, b) => n + b.length, 0));
            this.pump();
          }, this.up.settings.chunkMs);
          this.flushTimer.unref();
        }
        return;
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

  private write(socket: UpstreamSocket, turn: LiveTurn, bytes: number): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (bytes === 0) return;
    const pieces = turn.audio.slice(turn.sentPieces);
    turn.sentPieces = turn.audio.length;
    const frame = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, bytes);
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
    try {
      for await (const m of socket) {
        if (m.text === undefined) continue;
        let j: unknown;
        try {
          j = JSON.parse(m.text);
        } catch {
          fatal = deepgramMalformed(this.up.name, "a message that is not JSON");
          break;
        }
        if (!isObj(j)) continue;
        if (j["type"] === "Error") {
          fatal = new SpillwayError(Code.Unavailable, `${this.up.name}: ${str(j["description"]) || str(j["message"]) || "upstream error"}`, {
            httpStatus: 502,
            reason: str(j["variant"]) || "upstream_error",
            fromUpstream: true,
          });
          break;
        }
        this.route(j);
      }
    } catch (e) {
      lost = SpillwayError.from(e);
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
      t.startByte = undefined;
      t.sentPieces = 0;
      t.finalizeSent = false;
    }
    if (this.turns.length > 0) this.ensureSocket(this.turns[0]!.ctx);
  }

  private failAll(e: SpillwayError): void {
    this.finished = true;
    this.session.delete(this.key, this);
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
