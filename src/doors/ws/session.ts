/**
 * One realtime session: the state behind one WebSocket. It applies client
 * events in the order they arrive, runs turn detection over the input audio,
 * and runs turns one after the other — transcription of the user's audio,
 * then the response — so a response always sees the transcript of the turn
 * it answers. Barge-in (speech while a response runs, with
 * `interrupt_response`) cancels the running and queued responses at once.
 * Bad input gets an `error` event naming the problem; the session goes on.
 */
import { SpeechEvent_Type, type SpeechEvent } from "../../gen/spillway/v1/chunk.js";
import { isOverloadRefusal, type Principal, type Ticket } from "../../engine/admission.js";
import { closeForOverload, refuseForOverload } from "./overload-close.js";
import { Code } from "../../engine/code.js";
import { SpillwayError, stackless } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { ProviderSessionStore } from "../../engine/provider-session.js";
import { logger } from "../../observability/logger.js";
import { convertWire, decodeWire, formatBytesPerSample, formatRate, SESSION_RATE } from "./audio/formats.js";
import { isProblem, parseClientEvent, type ClientEvent, type ClientItem, type RealtimeProblem } from "./client-events.js";
import { Conversation, itemJson, type ConversationItem, type ItemContent } from "./conversation.js";
import { buildItem, truncateItem } from "./item-events.js";
import { IdleTimeout } from "./idle-timeout.js";
import { InputAudioBuffer } from "./input-buffer.js";
import { newId, Outbox, type EventSocket } from "./outbox.js";
import { profileModels, type ProfileRegistry } from "./profiles.js";
import { responsePlan } from "./response-plan.js";
import { RealtimeResponse, type CancelReason, type ResponseEnd, type ResponsePlan } from "./response.js";
import { applySessionUpdate, newSessionSettings, sessionJson, type SessionSettings } from "./session-config.js";
import { TurnTranscription } from "./transcription.js";
import { createTurnDetector, type TurnDetector, type VadEngine } from "./turn-detector.js";
import type { VadEvent } from "./vad.js";
import type { SileroModel } from "../../audio/silero-model.js";
import { Resampler } from "../../audio/resample.js";
import { SPEECH_ACTIVITY_KEY, SpeechActivity } from "../../audio/speech-activity.js";

/** Limits of a session (config `realtime`). */
export interface SessionLimits {
  /** Longest uncommitted input audio (ms); appends beyond it are refused. */
  readonly maxInputAudioMs: number;
  /** Buffered bytes on the socket above which audio output waits for `drain`. */
  readonly highWaterBytes: number;
  /** Session lifetime (ms), shown as `expires_at`. */
  readonly maxSessionMs: number;
  /** Time without a client event, while no response runs, after which the session is closed (ms). */
  readonly idleMs: number;
}

/** The socket as the session uses it. */
export interface SessionSocket extends EventSocket {
  end(code: number, reason: string): void;
}

/** What a session is made with. */
export interface SessionOptions {
  readonly engine: StreamEngine;
  readonly profiles: ProfileRegistry;
  readonly socket: SessionSocket;
  readonly beta: boolean;
  readonly principal: Principal | undefined;
  readonly limits: SessionLimits;
  /** Sees every server event sent (tests, tracing). */
  readonly observe?: (event: Record<string, unknown>) => void;
  /** Called when each response ends (logs, metrics); `closed` when the socket was gone by then. */
  readonly onResponseEnd?: (end: ResponseEnd, closed: boolean) => void;
  /** The turn detector: Silero over the shared `model` (default), or the energy VAD. */
  readonly vad?: { readonly engine: VadEngine; readonly model: Promise<SileroModel> | undefined } | undefined;
  /**
   * The admission slot the upgrade reserved for the first response
   * (`Admission.openReservedSession`); the session gives it to its first
   * response or back (see {@link RealtimeSession}). None: the first response
   * is admitted as any other.
   */
  readonly reservation?: Ticket | undefined;
  /** How long after `session.created` the reservation is held for the first response (ms; default {@link SETUP_RESERVATION_MS}). */
  readonly setupReservationMs?: number | undefined;
}

/**
 * How long a session holds the slot reserved at the upgrade for its first
 * response, counted from `session.created` (ms): setup (a `session.update`,
 * a first item) takes a client a few round trips; a client that has not
 * started its first response by then is treated as between responses.
 */
export const SETUP_RESERVATION_MS = 1000;

/** The abort reason of a closed session's work: built once, stackless (a flood of closes captures no stacks). */
const SESSION_CLOSED = stackless(() => new SpillwayError(Code.Canceled, "the realtime session closed"));

/** Below this, a commit is refused (OpenAI's rule). */
const MIN_COMMIT_MS = 100;

/**
 * One realtime session.
 *
 * Admission: a session let in at the upgrade holds one slot for its first
 * response (for up to {@link SETUP_RESERVATION_MS}, 1 s, after
 * `session.created`, or until its first response starts); between responses
 * it holds none. Precisely, the reservation (`SessionOptions.reservation`)
 * is taken over by the first response created while it is held — a
 * `response.create`, or a server-VAD turn that answers — which then checks
 * only the stream cap (`limits.maxConcurrentStreams`), not the adaptive
 * limit, and whose text stream takes the slot for its life (an unused one is
 * freed when that response ends). It is given back unused, at the first of:
 * the timer (1 s after `session.created`), `input_audio_buffer.clear` (the
 * client says it is between responses), the session being (or becoming, by
 * `session.update`) a transcription session, which has no responses, a
 * start that fails (unknown model), and the socket closing. Audio appended
 * or a user turn spoken does not extend the timer: a first utterance longer
 * than the window has its response admitted as any later one.
 */
export class RealtimeSession {
  private readonly outbox: Outbox;
  private settings!: SessionSettings;
  private readonly conversation = new Conversation();
  /** Uncommitted input, as it came (pcm16 24 kHz or G.711 8 kHz). */
  private readonly buffer = new InputAudioBuffer(SESSION_RATE, 2);
  private vad: TurnDetector | undefined;
  /** The rate the detector was made for, and a converter when the input format changed to another rate since. */
  private vadRate = SESSION_RATE;
  private vadResampler: Resampler | undefined;
  /** The turn being spoken (server VAD): its item id and its transcription, fed as audio arrives. */
  private live: { readonly itemId: string; readonly transcription: TurnTranscription } | undefined;
  private readonly lifetime = new AbortController();
  /** Upstream resources kept across turns (the recognizer's socket), closed with the session. */
  private readonly upstreams = new ProviderSessionStore();
  /** The VAD's frame-by-frame voice activity, for the recognizer's framing (kept in `upstreams`). */
  private readonly activity = new SpeechActivity();
  private turns: Promise<void> = Promise.resolve();
  /** Responses created and not done yet (the running one first). */
  private readonly responses = new Set<RealtimeResponse>();
  private readonly idleTurn = new IdleTimeout(
    () => this.buffer.positionMs,
    (start, end) => this.onIdleTurn(start, end),
  );
  private lastActivity = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;
  /** The slot reserved for the first response while it is held (see the class comment), and its timer. */
  private reservation: Ticket | undefined;
  private reservationTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SessionOptions) {
    this.outbox = new Outbox(opts.socket, opts.beta, opts.limits.highWaterBytes, opts.observe, true);
    this.upstreams.set(SPEECH_ACTIVITY_KEY, this.activity);
    this.reservation = opts.reservation?.holding ? opts.reservation : undefined;
  }

  /**
   * Opens the session on realtime model `modelId` ("" for the default), as a
   * transcription-only session when `transcription`: `session.created`, or an
   * error and close 1008.
   */
  start(modelId: string, transcription = false): void {
    let profile;
    try {
      profile = this.opts.profiles.get(modelId || this.opts.profiles.defaultId);
    } catch (e) {
      const err = SpillwayError.from(e);
      this.error({ code: err.reason ?? "model_not_found", message: err.message, param: "model", eventId: null });
      this.outbox.flush();
      this.releaseReservation();
      this.opts.socket.end(1008, "unknown realtime model");
      return;
    }
    const expiresAt = Math.floor((Date.now() + this.opts.limits.maxSessionMs) / 1000);
    this.settings = newSessionSettings(newId("sess"), profile, expiresAt);
    if (transcription) this.settings.type = "transcription";
    this.configureVad();
    this.outbox.send({ type: "session.created", session: sessionJson(this.settings, this.opts.beta) });
    this.armIdle(this.opts.limits.idleMs);
    if (transcription) this.releaseReservation();
    else if (this.reservation) {
      this.reservationTimer = setTimeout(() => this.releaseReservation(), this.opts.setupReservationMs ?? SETUP_RESERVATION_MS);
      this.reservationTimer.unref();
    }
  }

  /** Gives the slot reserved for the first response back, unused (idempotent). */
  private releaseReservation(): void {
    clearTimeout(this.reservationTimer);
    this.reservationTimer = undefined;
    this.reservation?.release();
    this.reservation = undefined;
  }

  /** The reservation for the response being created now (the first, within the window), handed over once. */
  private takeReservation(): Ticket | undefined {
    const t = this.reservation;
    if (!t) return undefined;
    clearTimeout(this.reservationTimer);
    this.reservationTimer = undefined;
    this.reservation = undefined;
    return t.holding ? t : undefined;
  }

  /** One lazy timer: re-armed only when it fires early (activity since, or a response running). */
  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      if (this.outbox.isClosed) return;
      const idle = performance.now() - this.lastActivity;
      if (this.responses.size > 0 || idle < this.opts.limits.idleMs) {
        if (this.responses.size > 0) this.lastActivity = performance.now();
        this.armIdle(this.opts.limits.idleMs - (performance.now() - this.lastActivity));
        return;
      }
      this.error({
        code: "session_idle_timeout",
        message: `The session was idle for ${Math.round(this.opts.limits.idleMs / 1000)} s (no client event) and is closed.`,
        param: null,
        eventId: null,
      });
      this.outbox.flush();
      this.opts.socket.end(1000, "idle timeout");
    }, Math.max(0, ms));
    this.idleTimer.unref();
  }

  /** A text frame: one JSON client event. */
  handleText(text: string): void {
    this.lastActivity = performance.now();
    const ev = parseClientEvent(text);
    if (isProblem(ev)) {
      this.error(ev);
      return;
    }
    try {
      this.dispatch(ev);
    } catch (e) {
      const err = SpillwayError.from(e);
      if (err.code === Code.Internal) logger.error({ err: e }, "realtime event failed");
      this.error({ code: err.reason ?? "invalid_value", message: err.message, param: err.param ?? null, eventId: ev.event_id ?? null });
    }
  }

  /** A binary frame: raw audio in the session's input format, as `input_audio_buffer.append`. */
  handleBinary(bytes: Uint8Array): void {
    this.lastActivity = performance.now();
    this.appendBytes(bytes, null);
  }

  /** A frame over the size limit: an error event naming it, then close 1009 (message too big). */
  frameTooBig(bytes: number, limit: number): void {
    this.error({
      code: "message_too_big",
      message: `A WebSocket frame of ${bytes} bytes is over the limit of ${limit} bytes; send audio in smaller appends.`,
      param: null,
      eventId: null,
    });
    this.outbox.flush();
    this.opts.socket.end(1009, "message too big");
  }

  /** uWS `drain`. */
  onDrain(): void {
    this.outbox.onDrain();
  }

  /** True while a response runs or is queued, or a user turn is being heard (server VAD). */
  get busy(): boolean {
    return this.responses.size > 0 || this.live !== undefined;
  }

  /**
   * The server is going away: an `error` event (`server_error`, code
   * `server_shutting_down`, `message`), then close 1001 (going away). The
   * close callback cancels whatever still runs.
   */
  shutdown(message: string): void {
    this.error({ code: "server_shutting_down", message, param: null, eventId: null }, "server_error");
    this.outbox.flush();
    this.opts.socket.end(1001, "server shutting down");
  }

  /** The socket closed: cancel every transcription and response, send nothing more. */
  close(): void {
    clearTimeout(this.idleTimer);
    this.releaseReservation();
    this.idleTurn.disarm();
    this.vad?.close();
    this.outbox.onClose();
    this.lifetime.abort(SESSION_CLOSED);
    this.live?.transcription.cancel();
    this.live = undefined;
    for (const r of this.responses) r.cancel("client_cancelled");
    this.responses.clear();
    this.upstreams.close();
  }

  private dispatch(ev: ClientEvent): void {
    const eventId = ev.event_id ?? null;
    switch (ev.type) {
      case "session.update": {
        const choice = ev.session.tool_choice ?? this.settings.toolChoice;
        const tools = ev.session.tools ?? this.settings.tools;
        if (typeof choice !== "string" && !tools.some((t) => t.name === choice.name)) {
          throw new SpillwayError(Code.InvalidArgument, `Invalid 'session.tool_choice': no tool named '${choice.name}' is in 'tools'.`, {
            param: "session.tool_choice",
            reason: "invalid_value",
          });
        }
        if (ev.session.model !== undefined) {
          const profile = this.opts.profiles.get(ev.session.model, "session.model");
          if (profile.upstream) {
            throw new SpillwayError(Code.InvalidArgument, `Invalid 'session.model': '${profile.id}' is an upstream realtime model; open a new session with it.`, {
              param: "session.model",
              reason: "invalid_value",
            });
          }
          this.opts.engine.admission.checkModels(this.opts.principal, profileModels(profile, this.settings.type === "transcription"));
          this.settings.profile = profile;
          this.settings.transcription.model = this.settings.profile.stt;
        }
        const before = this.settings.inputFormat;
        applySessionUpdate(this.settings, ev.session);
        if (this.settings.inputFormat !== before) this.inputFormatChanged(before);
        this.configureVad();
        if (this.settings.type === "transcription") this.releaseReservation();
        this.outbox.send({ type: "session.updated", session: sessionJson(this.settings, this.opts.beta) });
        return;
      }
      case "input_audio_buffer.append":
        this.append(ev.audio, eventId);
        return;
      case "input_audio_buffer.commit":
        this.commit(eventId);
        return;
      case "input_audio_buffer.clear":
        // The client is between responses: the first response's slot goes back.
        this.releaseReservation();
        this.buffer.clear();
        this.vad?.reset();
        this.live?.transcription.cancel();
        this.live = undefined;
        this.outbox.send({ type: "input_audio_buffer.cleared" });
        return;
      case "conversation.item.create":
        this.createItem(ev.item, ev.previous_item_id, eventId);
        return;
      case "conversation.item.delete":
      case "conversation.item.retrieve": {
        const item = this.conversation.find(ev.item_id);
        if (!item) {
          this.error({ code: "item_not_found", message: `Item with id '${ev.item_id}' not found.`, param: "item_id", eventId });
        } else if (ev.type === "conversation.item.delete") {
          this.conversation.delete(ev.item_id);
          this.outbox.send({ type: "conversation.item.deleted", item_id: ev.item_id });
        } else {
          this.outbox.send({ type: "conversation.item.retrieved", item: itemJson(item, this.opts.beta) });
        }
        return;
      }
      case "conversation.item.truncate":
        this.truncate(ev.item_id, ev.content_index, ev.audio_end_ms, eventId);
        return;
      case "response.create":
        this.createResponse(ev, eventId);
        return;
      case "response.cancel":
        this.cancelResponse(ev.response_id, eventId);
        return;
    }
  }

  /** The input format changed: buffered audio is converted, and a detector at another rate starts over. */
  private inputFormatChanged(before: SessionSettings["inputFormat"]): void {
    const after = this.settings.inputFormat;
    this.buffer.reformat(formatRate(after), formatBytesPerSample(after), (bytes) => convertWire(before, after, bytes));
    // The detector keeps its rate (and its speech state): the new format's audio is converted for it.
    this.vadResampler = formatRate(after) === this.vadRate ? undefined : new Resampler(formatRate(after), this.vadRate);
  }

  private configureVad(): void {
    const td = this.settings.turnDetection;
    if (!td) {
      this.vad?.close();
      this.vad = undefined;
      this.activity.set(false);
      return;
    }
    const s = { threshold: td.threshold, prefixPaddingMs: td.prefixPaddingMs, silenceDurationMs: td.silenceDurationMs };
    if (this.vad) {
      this.vad.configure(s);
      return;
    }
    const choice = this.opts.vad ?? { engine: "energy", model: undefined };
    this.vadRate = formatRate(this.settings.inputFormat);
    this.vadResampler = undefined;
    this.vad = createTurnDetector(choice.engine, choice.model, {
      settings: s,
      // Audio at the input format's own rate (G.711 decoded, not resampled).
      sampleRate: formatRate(this.settings.inputFormat),
      startMs: this.buffer.positionMs,
      onEvent: (e) => this.onVadEvent(e),
      onVoice: (voiced) => this.activity.set(voiced),
      voiceHeard: () => this.activity.listened,
    });
  }

  private append(audio: string, eventId: string | null): void {
    // Decoded into the buffer's own store; appendBytes adds it there without a copy.
    const bytes = this.buffer.stageBase64(audio);
    if (!bytes) {
      this.error({ code: "invalid_value", message: "Invalid 'audio': it must be base64-encoded audio.", param: "audio", eventId });
      return;
    }
    this.appendBytes(bytes, eventId);
  }

  private appendBytes(bytes: Uint8Array, eventId: string | null): void {
    const format = this.settings.inputFormat;
    const vad = this.settings.turnDetection ? this.vad : undefined;
    let samples: Int16Array | undefined;
    try {
      // The detector hears decoded samples; the buffer and the transcription keep the bytes as they came.
      if (vad || format === "audio/pcm") samples = decodeWire(format, bytes);
    } catch (e) {
      this.error({
        code: "invalid_audio_format",
        message: `Invalid 'audio' for input format ${format}: ${(e as Error).message}.`,
        param: "audio",
        eventId,
      });
      return;
    }
    const addMs = (bytes.length * 1000) / formatBytesPerSample(format) / formatRate(format);
    if (this.buffer.durationMs + addMs > this.opts.limits.maxInputAudioMs) {
      this.error({
        code: "input_audio_buffer_full",
        message: `The input audio buffer holds at most ${this.opts.limits.maxInputAudioMs} ms; commit or clear it first.`,
        param: "audio",
        eventId,
      });
      return;
    }
    this.buffer.append(bytes);
    this.live?.transcription.push(bytes, format);
    if (!vad || !samples) return;
    vad.push(this.vadResampler ? this.vadResampler.push(samples) : samples);
    this.trimBetweenTurns();
  }

  /** Between turns keep only what a future speech start (with its prefix padding) needs, so silence never fills the buffer. */
  private trimBetweenTurns(): void {
    const vad = this.vad;
    if (vad && !vad.inSpeech && !this.live) this.buffer.dropBefore(vad.retainFromMs);
  }

  /** A detector event (at once for the energy VAD, after inference for Silero). */
  private onVadEvent(e: VadEvent): void {
    if (this.outbox.isClosed || !this.settings.turnDetection) return;
    this.onVad(e);
    this.trimBetweenTurns();
  }

  private onVad(e: VadEvent): void {
    const td = this.settings.turnDetection!;
    if (e.type === "speech_started") {
      const itemId = newId("item");
      this.buffer.dropBefore(e.audioStartMs);
      this.live?.transcription.cancel();
      this.live = { itemId, transcription: this.transcription(itemId) };
      this.live.transcription.push(this.buffer.peek(), this.settings.inputFormat);
      this.idleTurn.disarm();
      this.outbox.send({ type: "input_audio_buffer.speech_started", audio_start_ms: e.audioStartMs, item_id: itemId });
      if (td.interruptResponse) this.cancelAll("turn_detected");
      return;
    }
    const itemId = this.live?.itemId ?? newId("item");
    this.outbox.send({ type: "input_audio_buffer.speech_stopped", audio_end_ms: e.audioEndMs, item_id: itemId });
    this.commitTurn(itemId, td.createResponse && this.settings.type === "realtime");
  }

  private commit(eventId: string | null): void {
    const ms = this.buffer.durationMs;
    if (ms < MIN_COMMIT_MS) {
      this.error({
        code: "input_audio_buffer_commit_empty",
        message: `Error committing input audio buffer: buffer too small. Expected at least ${MIN_COMMIT_MS}ms of audio, but buffer only has ${ms.toFixed(2)}ms of audio.`,
        param: null,
        eventId,
      });
      return;
    }
    const itemId = this.live?.itemId ?? newId("item");
    this.vad?.reset();
    this.commitTurn(itemId, false);
  }

  /** Commits the buffer as user item `itemId`; transcribes it, then answers when `respond`. */
  private commitTurn(itemId: string, respond: boolean): void {
    const live = this.live?.itemId === itemId ? this.live.transcription : undefined;
    this.live = undefined;
    const audio = this.buffer.take();
    const part: ItemContent = { type: "input_audio" };
    const item: ConversationItem = { id: itemId, role: "user", status: "completed", content: [part], audioMs: 0 };
    const previous = this.conversation.add(item);
    this.outbox.send({ type: "input_audio_buffer.committed", previous_item_id: previous, item_id: itemId });
    this.outbox.itemAdded(previous, itemJson(item, this.opts.beta));
    this.transcribeItem(part, live ?? this.transcription(itemId), live ? undefined : audio);
    this.enqueue(() => Promise.resolve(this.outbox.itemDone(itemJson(item, this.opts.beta))));
    if (respond) this.queueResponse(this.plan(undefined));
  }

  /** Starts transcribing for item `itemId` (audio is pushed by the caller). */
  private transcription(itemId: string): TurnTranscription {
    const t = this.settings.transcription;
    return new TurnTranscription({
      engine: this.opts.engine,
      outbox: this.outbox,
      model: t.model,
      language: t.language,
      prompt: t.prompt,
      format: this.settings.inputFormat,
      itemId,
      signal: this.lifetime.signal,
      principal: this.opts.principal,
      session: this.upstreams,
      onSpeech: (e) => this.onRecognizerSpeech(itemId, e),
    });
  }

  /**
   * A streaming recognizer's endpointing (Deepgram `speech_final` /
   * `UtteranceEnd`) said the speaker stopped: with server turn detection on
   * and the VAD still hearing this turn, the turn ends now, as if the VAD had
   * said so — whichever comes first ends it. The VAD is reset, so its own
   * stop for this turn never comes; barge-in (speech starts) stays the VAD's.
   */
  private onRecognizerSpeech(itemId: string, e: SpeechEvent): void {
    const td = this.settings.turnDetection;
    if (!td || e.type !== SpeechEvent_Type.TYPE_SPEECH_STOPPED || this.outbox.isClosed) return;
    if (this.live?.itemId !== itemId || !this.vad?.inSpeech) return;
    this.vad.reset();
    this.outbox.send({ type: "input_audio_buffer.speech_stopped", audio_end_ms: this.buffer.positionMs, item_id: itemId });
    this.commitTurn(itemId, td.createResponse && this.settings.type === "realtime");
    this.trimBetweenTurns();
  }

  /** Finishes a committed item's transcription; the next turn task waits for its transcript. */
  private transcribeItem(part: ItemContent, transcription: TurnTranscription, audio: Uint8Array | undefined): void {
    if (audio) transcription.push(audio, this.settings.inputFormat);
    transcription.end();
    transcription.release();
    this.enqueue(async () => {
      part.transcript = await transcription.result;
    });
  }

  private createItem(ci: ClientItem, previousId: string | null | undefined, eventId: string | null): void {
    const built = buildItem(ci, previousId, this.conversation, this.settings.inputFormat);
    if ("code" in built) {
      this.error({ ...built, eventId });
      return;
    }
    const { item, audio } = built;
    const previous = this.conversation.add(item, previousId ?? undefined);
    this.outbox.itemAdded(previous, itemJson(item, this.opts.beta));
    for (const a of audio) this.transcribeItem(a.part, this.transcription(item.id), a.bytes);
    if (audio.length === 0) this.outbox.itemDone(itemJson(item, this.opts.beta));
    else this.enqueue(() => Promise.resolve(this.outbox.itemDone(itemJson(item, this.opts.beta))));
  }

  private truncate(itemId: string, contentIndex: number, audioEndMs: number, eventId: string | null): void {
    const problem = truncateItem(this.conversation, itemId, contentIndex, audioEndMs);
    if (problem) {
      this.error({ ...problem, eventId });
      return;
    }
    this.outbox.send({ type: "conversation.item.truncated", item_id: itemId, content_index: contentIndex, audio_end_ms: audioEndMs });
  }

  private plan(ev: Extract<ClientEvent, { type: "response.create" }> | undefined): ResponsePlan {
    return responsePlan(this.settings, ev, {
      engine: this.opts.engine,
      outbox: this.outbox,
      conversation: this.conversation,
      beta: this.opts.beta,
      principal: this.opts.principal,
      ticket: this.takeReservation(),
      onEnd: (end) => {
        this.opts.onResponseEnd?.(end, this.outbox.isClosed);
        // Refused by admission when it ran (the check at response.create raced): close, as above.
        if (end.error && isOverloadRefusal(end.error)) closeForOverload(this.opts.socket, this.outbox);
        else this.afterResponse(end);
      },
    });
  }

  private createResponse(ev: Extract<ClientEvent, { type: "response.create" }>, eventId: string | null): void {
    if (this.settings.type === "transcription") {
      this.error({ code: "invalid_request", message: "Transcription sessions do not create responses.", param: "type", eventId });
      return;
    }
    if (this.responses.size > 0) {
      this.error({
        code: "conversation_already_has_active_response",
        message: "Conversation already has an active response in progress; cancel it or wait for response.done.",
        param: null,
        eventId,
      });
      return;
    }
    // Past capacity: refused before the response is set up, and the session closed (see overload-close.ts).
    // The first response, with the reservation still held, is checked against the stream cap only.
    const refused = this.opts.engine.admission.refusal(this.reservation);
    if (refused) {
      refuseForOverload(this.outbox, this.opts.socket, eventId, refused);
      return;
    }
    this.queueResponse(this.plan(ev));
  }

  /** Arms `idle_timeout_ms` once the last response is over and played. */
  private afterResponse(end: ResponseEnd): void {
    const idleMs = this.settings.turnDetection?.idleTimeoutMs;
    if (!idleMs || this.outbox.isClosed || this.settings.type !== "realtime") return;
    if (end.status !== "completed" && end.status !== "incomplete") return;
    const playing = end.firstAudioAt > 0 ? end.firstAudioAt + end.audioMs - performance.now() : 0;
    this.idleTurn.arm(idleMs, playing);
  }

  /** `idle_timeout_ms` passed in silence: commit what was heard as a turn, and answer. */
  private onIdleTurn(audioStartMs: number, audioEndMs: number): void {
    const td = this.settings.turnDetection;
    if (!td || this.outbox.isClosed || this.responses.size > 0 || this.vad?.inSpeech) return;
    const itemId = newId("item");
    this.outbox.send({ type: "input_audio_buffer.timeout_triggered", audio_start_ms: audioStartMs, audio_end_ms: audioEndMs, item_id: itemId });
    this.commitTurn(itemId, td.createResponse);
  }

  private queueResponse(plan: ResponsePlan): void {
    this.idleTurn.disarm();
    const response = new RealtimeResponse(plan);
    this.responses.add(response);
    void response.done.then(() => this.responses.delete(response));
    this.enqueue(() => response.run());
  }

  private cancelResponse(responseId: string | undefined, eventId: string | null): void {
    const targets = [...this.responses].filter((r) => responseId === undefined || r.id === responseId);
    if (targets.length === 0) {
      this.error({
        code: "response_cancel_not_active",
        message: responseId ? `Cancellation failed: no active response with id '${responseId}'.` : "Cancellation failed: no active response found.",
        param: responseId ? "response_id" : null,
        eventId,
      });
      return;
    }
    for (const r of targets) r.cancel("client_cancelled");
  }

  private cancelAll(reason: CancelReason): void {
    for (const r of this.responses) r.cancel(reason);
  }

  /** Runs turn work one task after the other. */
  private enqueue(task: () => Promise<void>): void {
    this.turns = this.turns.then(task).catch((e: unknown) => logger.error({ err: e }, "realtime turn failed"));
  }

  private error(p: RealtimeProblem, type = "invalid_request_error"): void {
    this.outbox.send({
      type: "error",
      error: { type, code: p.code, message: p.message, param: p.param, event_id: p.eventId },
    });
  }
}
