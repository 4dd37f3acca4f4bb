/**
 * The WebSocket door: `GET /v1/realtime?model=…` upgraded on the HTTP
 * door's uWS app (same port, TLS when the HTTP door has it), speaking the
 * OpenAI Realtime protocol. The upgrade authenticates the API key (bearer
 * header or `openai-insecure-api-key.<key>` subprotocol) against the
 * gateway keys and the profile's models against the key's model list (401 /
 * 403 on the handshake; 503 + Retry-After while draining, past the process's
 * realtime session cap or past its capacity — `Admission.openReservedSession`,
 * the error rendered as the HTTP door renders it, upgrade-refusal.ts; with no
 * gateway keys checked before the handshake is parsed), reserves one
 * admission slot for the session's first response (the rule is in
 * session.ts, `RealtimeSession`), echoes one of the offered
 * subprotocols, and hands the socket to a {@link RealtimeSession} (a
 * cascade) or an {@link UpstreamRealtimeSession} (a profile naming an
 * upstream Realtime model). Frames over `maxFrameBytes` get an `error`
 * event and close the socket with 1009; the server pings idle sockets and drops dead ones; sessions
 * end after `maxSessionMinutes`, or `idleTimeoutSeconds` without a client
 * event; a closed socket cancels all of its session's work.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Counter } from "prom-client";
import type uWS from "uWebSockets.js";
import { loadSileroModel } from "../../audio/silero-model.js";
import type { ProviderConfig } from "../../config/schema.js";
import type { Principal, ReservedSession, Ticket } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { logger } from "../../observability/logger.js";
import { recordRequest, type Observability } from "../../observability/observability.js";
import type { Door } from "../door.js";
import type { RequestSpan } from "../../observability/tracing.js";
import { parseHandshake, type Handshake } from "./handshake.js";
import { createProfileRegistry, profileModels, type ProfileConfig, type ProfileRegistry } from "./profiles.js";
import { RealtimeSession } from "./session.js";
import { refuseUpgrade } from "./upgrade-refusal.js";
import type { VadEngine } from "./turn-detector.js";
import { resolveUpstreamProfiles } from "./upstream/upstream-profiles.js";
import { UpstreamRealtimeSession } from "./upstream/upstream-session.js";

/** The settings of the realtime door (config `realtime`). */
export interface RealtimeDoorSettings {
  readonly profiles: Readonly<Record<string, ProfileConfig>>;
  readonly defaultModel: string;
  readonly maxFrameBytes: number;
  readonly maxInputAudioMs: number;
  readonly maxSessionMinutes: number;
  readonly idleTimeoutSeconds: number;
  readonly highWaterBytes: number;
  /** Turn detection engine (default Silero, loaded once per process) and an optional model file. */
  readonly vad?: { readonly engine: VadEngine; readonly modelPath?: string | undefined } | undefined;
  /** Connect + upstream `session.created` for upstream profiles (ms; default 10 s). */
  readonly upstreamConnectTimeoutMs?: number | undefined;
}

/** What the door is made with. */
export interface RealtimeDoorOptions {
  readonly engine: StreamEngine;
  readonly settings: RealtimeDoorSettings;
  /** The configured providers, for profiles with an `upstream` model (config `providers`). */
  readonly providers?: Readonly<Record<string, ProviderConfig>> | undefined;
  /** Sees every server event of every session (tests, tracing). */
  readonly observe?: (event: Record<string, unknown>) => void;
  /** Metrics and logs: one record per response (door `ws`). */
  readonly obs?: Observability | undefined;
  /**
   * How long a session holds the slot reserved at the upgrade for its first
   * response, after `session.created` (ms; default `SETUP_RESERVATION_MS`,
   * 1000, in session.ts). Tests shorten it.
   */
  readonly setupReservationMs?: number | undefined;
}

/**
 * The realtime door, attached to an app: the door contract (`drain`,
 * `close(grace)`, `active`) that the gateway sequences at shutdown.
 */
export interface RealtimeDoor extends Door {
  /** `ws`. */
  readonly name: "ws";
  /** Open sessions (sockets past the upgrade, not yet closed). */
  readonly active: number;
  /** Same as {@link active}. */
  readonly activeCount: number;
  /** Same as {@link active} (the older name). */
  readonly openSessions: number;
  /** True once {@link drain} was called. */
  readonly draining: boolean;
  /**
   * Refuses new work: from now on an upgrade is answered with HTTP 503
   * (`server_shutting_down`, `Retry-After: 1`). Open sessions go on.
   * Idempotent.
   */
  drain(): void;
  /**
   * Drains, waits up to `graceMs` while any session is busy (a
   * response running or a user turn being heard), then ends every session
   * left with the door's own signal: an `error` event (`server_error`,
   * code `server_shutting_down`) and a close frame 1001 (going away).
   * Resolves once those are sent; never rejects.
   */
  close(graceMs: number): Promise<void>;
  /** Ends every session at once, as `close(0)` does (kept for callers of the old name). */
  closeAll(): void;
  /**
   * New sessions use these profiles (config reload), with upstream profiles
   * resolved against `providers` (the old providers when absent); open
   * sessions keep theirs. A profile that does not resolve keeps the old
   * profiles in force (logged). Frame, session and VAD limits need a restart.
   */
  reconfigure(settings: Pick<RealtimeDoorSettings, "profiles" | "defaultModel">, providers?: Readonly<Record<string, ProviderConfig>>): void;
}

/** Seconds a refused upgrade tells the client to wait (`Retry-After`) while draining. */
const DRAIN_RETRY_AFTER_SECONDS = 1;
/** How often `close(grace)` looks whether sessions are still busy. */
const BUSY_POLL_MS = 25;

/** Seconds of silence (pongs included) after which uWS drops a dead peer. */
const PING_IDLE_SECONDS = 60;

interface SocketData {
  readonly handshake: Handshake;
  readonly principal: Principal | undefined;
  /** Frees the session's place under `limits.maxRealtimeSessions` (at close; idempotent). */
  readonly endSession: () => void;
  /** The slot held for the session's first response (handed to the session; released at close if still held). */
  readonly reservation: Ticket;
  /** The upgrade request's W3C trace context (tracing on). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  session?: RealtimeSession | UpstreamRealtimeSession;
  openedAt?: number;
  span?: RequestSpan | undefined;
}

/** The engine with every call a child of the session's span. */
function tracedEngine(engine: StreamEngine, traceparent: string): StreamEngine {
  return {
    ...engine,
    generate: (req, o = {}) => engine.generate(req, { ...o, traceparent }),
    synthesize: (req, o = {}) => engine.synthesize(req, { ...o, traceparent }),
    transcribe: (config, audio, o = {}) => engine.transcribe(config, audio, { ...o, traceparent }),
  };
}

function shuttingDown(): SpillwayError {
  return new SpillwayError(Code.Unavailable, "The server is shutting down; retry on another instance.", {
    reason: "server_shutting_down",
    retryAfterMs: DRAIN_RETRY_AFTER_SECONDS * 1000,
    httpStatus: 503,
  });
}

/** Registers `/v1/realtime` on `app`. */
export function attachRealtimeDoor(app: uWS.TemplatedApp, opts: RealtimeDoorOptions): RealtimeDoor {
  const { engine, settings } = opts;
  let profiles = createProfileRegistry(settings.profiles, settings.defaultModel);
  const sockets = new Set<uWS.WebSocket<SocketData>>();
  const vadEngine = settings.vad?.engine ?? "silero";
  // Loaded now (once per process), so the first session does not wait for it; a failure is logged by the first detector that falls back.
  const vadModel = vadEngine === "silero" ? loadSileroModel(settings.vad?.modelPath) : undefined;
  vadModel?.catch(() => undefined);
  let currentProviders = opts.providers ?? {};
  let upstreams = resolveUpstreamProfiles(profiles, currentProviders, engine);
  const sessionSeconds = opts.obs
    ? new Counter({
        name: "spillway_realtime_session_seconds_total",
        help: "Seconds realtime sessions were open, by realtime model and kind (cascade or upstream).",
        labelNames: ["model", "kind"],
        registers: [opts.obs.metrics.registry],
      })
    : undefined;
  let draining = false;
  app.ws<SocketData>("/v1/realtime", {
    // uWS cuts larger frames off without a close frame (1006); up to twice the
    // limit they reach `message`, which closes cleanly with 1009 and a reason.
    maxPayloadLength: settings.maxFrameBytes * 2,
    // Events are sent whatever the backpressure (audio waits on drain instead), so never drop.
    maxBackpressure: Math.max(64 * 1024 * 1024, settings.highWaterBytes * 4),
    closeOnBackpressureLimit: 0,
    // Transport liveness: uWS pings the client and closes a socket silent for this long.
    idleTimeout: PING_IDLE_SECONDS,
    sendPingsAutomatically: true,
    maxLifetime: settings.maxSessionMinutes,
    upgrade(res, req, context) {
      let admitted: ReservedSession | undefined;
      // An open gateway (no keys: nothing to say 401 first) checks capacity before any
      // handshake work: a refused upgrade in a flood costs a lookup and cached bytes.
      if (!engine.admission.required) {
        try {
          if (draining) throw shuttingDown();
          admitted = engine.admission.openReservedSession();
        } catch (e) {
          refuseUpgrade(res, SpillwayError.from(e));
          return;
        }
      }
      const handshake = parseHandshake({
        authorization: req.getHeader("authorization"),
        openAiBeta: req.getHeader("openai-beta"),
        protocols: req.getHeader("sec-websocket-protocol"),
        query: req.getQuery() ?? "",
      });
      const key = req.getHeader("sec-websocket-key");
      const extensions = req.getHeader("sec-websocket-extensions");
      let principal: Principal | undefined;
      try {
        if (draining) throw shuttingDown();
        principal = engine.admission.authenticate(handshake.apiKey === undefined ? undefined : `Bearer ${handshake.apiKey}`);
        // Past the session cap or past capacity, refused at the upgrade (503 + Retry-After, the
        // real reason), before the WebSocket is accepted. Let in, the session holds one slot
        // for its first response (see `RealtimeSession`); its place is freed at close.
        admitted ??= engine.admission.openReservedSession();
        admitProfile(engine, profiles, principal, handshake);
      } catch (e) {
        admitted?.reservation.release();
        admitted?.end();
        refuseUpgrade(res, SpillwayError.from(e));
        return;
      }
      const { end: endSession, reservation } = admitted;
      const data: SocketData = opts.obs?.tracing
        ? { handshake, principal, endSession, reservation, traceparent: req.getHeader("traceparent"), tracestate: req.getHeader("tracestate") }
        : { handshake, principal, endSession, reservation };
      try {
        res.upgrade(data, key, handshake.protocol, extensions, context);
      } catch (e) {
        reservation.release();
        endSession();
        throw e;
      }
    },
    open(ws) {
      sockets.add(ws);
      const data = ws.getUserData();
      data.span = opts.obs?.tracing?.startRequest({
        door: "ws",
        name: "realtime session",
        traceparent: data.traceparent,
        tracestate: data.tracestate,
        attributes: { "http.route": "/v1/realtime", "gen_ai.operation.name": "realtime", "spillway.realtime.model": data.handshake.model || profiles.defaultId, ...(data.principal && data.principal.index >= 0 ? { "spillway.key.name": data.principal.name } : {}) },
      });
      data.openedAt = performance.now();
      const upstream = upstreams.get(data.handshake.model || profiles.defaultId);
      if (upstream) {
        const relay = new UpstreamRealtimeSession({
          socket: ws,
          target: upstream.target,
          route: upstream.route,
          profileId: data.handshake.model || profiles.defaultId,
          beta: data.handshake.beta,
          transcription: data.handshake.transcription,
          principal: data.principal,
          admission: engine.admission,
          limits: {
            idleMs: settings.idleTimeoutSeconds * 1000,
            maxFrameBytes: settings.maxFrameBytes,
            highWaterBytes: settings.highWaterBytes,
            connectTimeoutMs: settings.upstreamConnectTimeoutMs ?? 10_000,
          },
          observe: opts.observe,
          obs: opts.obs,
        });
        // The relay admits each upstream response as it starts (upstream-session.ts): it keeps no reservation.
        data.reservation.release();
        data.session = relay;
        relay.start();
        return;
      }
      const session = new RealtimeSession({
        engine: data.span ? tracedEngine(engine, data.span.traceparent) : engine,
        profiles,
        socket: ws,
        beta: data.handshake.beta,
        principal: data.principal,
        limits: {
          maxInputAudioMs: settings.maxInputAudioMs,
          highWaterBytes: settings.highWaterBytes,
          maxSessionMs: settings.maxSessionMinutes > 0 ? settings.maxSessionMinutes * 60_000 : 24 * 3_600_000,
          idleMs: settings.idleTimeoutSeconds * 1000,
        },
        vad: { engine: vadEngine, model: vadModel },
        reservation: data.reservation,
        ...(opts.setupReservationMs !== undefined ? { setupReservationMs: opts.setupReservationMs } : {}),
        ...(opts.observe ? { observe: opts.observe } : {}),
        onResponseEnd: (end, closed) => {
          if (!opts.obs) return;
          recordRequest(opts.obs, {
            requestId: end.id,
            door: "ws",
            route: "/v1/realtime",
            status: end.status === "completed" ? "ok" : end.status,
            startedAt: end.startedAt,
            summary: end.textSummary,
            error: end.error,
            bytesOut: end.audioBytes,
            audioOutSeconds: end.audioMs / 1000,
            clientDisconnected: closed,
          });
        },
      });
      data.session = session;
      session.start(data.handshake.model, data.handshake.transcription);
    },
    message(ws, message, isBinary) {
      const session = ws.getUserData().session;
      if (!session) return;
      if (message.byteLength > settings.maxFrameBytes) {
        session.frameTooBig(message.byteLength, settings.maxFrameBytes);
        return;
      }
      try {
        if (isBinary) session.handleBinary(new Uint8Array(message.slice(0)));
        else session.handleText(Buffer.from(message).toString("utf8"));
      } catch (e) {
        logger.error({ err: e }, "realtime frame failed");
      }
    },
    drain(ws) {
      ws.getUserData().session?.onDrain();
    },
    close(ws) {
      sockets.delete(ws);
      const data = ws.getUserData();
      data.endSession();
      data.reservation.release();
      data.session?.close();
      data.span?.end({ status: "closed", outcome: "ok" });
      if (data.openedAt !== undefined) {
        const kind = data.session instanceof UpstreamRealtimeSession ? "upstream" : "cascade";
        const asked = data.handshake.model || profiles.defaultId;
        const model = profiles.ids.includes(asked) ? asked : "unknown";
        sessionSeconds?.inc({ model, kind }, (performance.now() - data.openedAt) / 1000);
      }
    },
  });
  const endAll = (): void => {
    draining = true;
    for (const ws of [...sockets]) {
      const session = ws.getUserData().session;
      if (session) session.shutdown("The server is shutting down; reconnect to another instance.");
      else ws.end(1001, "server shutting down");
    }
  };
  const busy = (): boolean => [...sockets].some((ws) => ws.getUserData().session?.busy === true);
  return {
    name: "ws",
    get active() {
      return sockets.size;
    },
    get activeCount() {
      return sockets.size;
    },
    get openSessions() {
      return sockets.size;
    },
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
    async close(graceMs = 0) {
      draining = true;
      const until = Date.now() + graceMs;
      while (busy() && Date.now() < until) await sleep(Math.min(BUSY_POLL_MS, Math.max(1, until - Date.now())));
      endAll();
    },
    closeAll: endAll,
    reconfigure(next, providers) {
      const nextProfiles = createProfileRegistry(next.profiles, next.defaultModel);
      let nextUpstreams;
      try {
        nextUpstreams = resolveUpstreamProfiles(nextProfiles, providers ?? currentProviders, engine);
      } catch (e) {
        logger.error({ err: (e as Error).message }, "realtime profiles not reloaded: the old ones stay in force");
        return;
      }
      profiles = nextProfiles;
      upstreams = nextUpstreams;
      if (providers) currentProviders = providers;
    },
  };
}

/**
 * Refuses an upgrade whose profile (or a model it uses) the caller's key may
 * not use: 403 on the handshake, before `session.created`. An unknown profile
 * passes here and is refused in the session (error event, close 1008).
 */
function admitProfile(engine: StreamEngine, profiles: ProfileRegistry, principal: Principal, handshake: Handshake): void {
  let profile;
  try {
    profile = profiles.get(handshake.model || profiles.defaultId);
  } catch {
    return;
  }
  engine.admission.checkModels(principal, profileModels(profile, handshake.transcription));
}
