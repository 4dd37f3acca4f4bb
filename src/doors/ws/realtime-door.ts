import { openAiErrorBody } from "../http/shapes/openai/errors.js";
/**
 * The WebSocket door: `GET /v1/realtime?model=…` upgraded on the HTTP
 * door's uWS app (same port, TLS when the HTTP door has it), speaking the
 * OpenAI Realtime protocol. The upgrade authenticates the API key (bearer
 * header or `openai-insecure-api-key.<key>` subprotocol) against the
 * gateway keys, echoes one of the offered subprotocols, and hands the socket
 * to a {@link RealtimeSession}. Frames over `maxFrameBytes` get an `error`
 * event and close the socket with 1009; the server pings idle sockets and drops dead ones; sessions
 * end after `maxSessionMinutes`, or `idleTimeoutSeconds` without a client
 * event; a closed socket cancels all of its session's work.
 */
import type uWS from "uWebSockets.js";
import type { Principal } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { logger } from "../../observability/logger.js";
import { recordRequest, type Observability } from "../../observability/observability.js";
import type { RequestSpan } from "../../observability/tracing.js";
import { parseHandshake, type Handshake } from "./handshake.js";
import { createProfileRegistry, type ProfileConfig } from "./profiles.js";
import { RealtimeSession } from "./session.js";

/** The settings of the realtime door (config `realtime`). */
export interface RealtimeDoorSettings {
  readonly profiles: Readonly<Record<string, ProfileConfig>>;
  readonly defaultModel: string;
  readonly maxFrameBytes: number;
  readonly maxInputAudioMs: number;
  readonly maxSessionMinutes: number;
  readonly idleTimeoutSeconds: number;
  readonly highWaterBytes: number;
}

/** What the door is made with. */
export interface RealtimeDoorOptions {
  readonly engine: StreamEngine;
  readonly settings: RealtimeDoorSettings;
  /** Sees every server event of every session (tests, tracing). */
  readonly observe?: (event: Record<string, unknown>) => void;
  /** Metrics and logs: one record per response (door `ws`). */
  readonly obs?: Observability | undefined;
}

/** The realtime door, attached to an app. */
export interface RealtimeDoor {
  /** Open sessions. */
  readonly openSessions: number;
  /** Closes every session's socket (1001, going away). */
  closeAll(): void;
  /** New sessions use these profiles (config reload); open sessions keep theirs. Frame and session limits need a restart. */
  reconfigure(settings: Pick<RealtimeDoorSettings, "profiles" | "defaultModel">): void;
}

/** Seconds of silence (pongs included) after which uWS drops a dead peer. */
const PING_IDLE_SECONDS = 60;

interface SocketData {
  readonly handshake: Handshake;
  readonly principal: Principal | undefined;
  /** The upgrade request's W3C trace context (tracing on). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  session?: RealtimeSession;
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

function reject(res: uWS.HttpResponse, err: SpillwayError): void {
  const status = err.code === Code.Unauthenticated ? "401 Unauthorized" : err.code === Code.PermissionDenied ? "403 Forbidden" : "400 Bad Request";
  res.cork(() => {
    res
      .writeStatus(status)
      .writeHeader("content-type", "application/json")
      .end(openAiErrorBody(err));
  });
}

/** Registers `/v1/realtime` on `app`. */
export function attachRealtimeDoor(app: uWS.TemplatedApp, opts: RealtimeDoorOptions): RealtimeDoor {
  const { engine, settings } = opts;
  let profiles = createProfileRegistry(settings.profiles, settings.defaultModel);
  const sockets = new Set<uWS.WebSocket<SocketData>>();
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
        principal = engine.admission.authenticate(handshake.apiKey === undefined ? undefined : `Bearer ${handshake.apiKey}`);
      } catch (e) {
        reject(res, SpillwayError.from(e));
        return;
      }
      const data: SocketData = opts.obs?.tracing
        ? { handshake, principal, traceparent: req.getHeader("traceparent"), tracestate: req.getHeader("tracestate") }
        : { handshake, principal };
      res.upgrade(data, key, handshake.protocol, extensions, context);
    },
    open(ws) {
      sockets.add(ws);
      const data = ws.getUserData();
      data.span = opts.obs?.tracing?.startRequest({
        door: "ws",
        name: "realtime session",
        traceparent: data.traceparent,
        tracestate: data.tracestate,
        attributes: { "http.route": "/v1/realtime", "gen_ai.operation.name": "realtime", "spillway.realtime.model": data.handshake.model || settings.defaultModel, ...(data.principal && data.principal.index >= 0 ? { "spillway.key.name": data.principal.name } : {}) },
      });
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
      data.session?.close();
      data.span?.end({ status: "closed", outcome: "ok" });
    },
  });
  return {
    get openSessions() {
      return sockets.size;
    },
    closeAll() {
      for (const ws of [...sockets]) ws.end(1001, "server shutting down");
    },
    reconfigure(next) {
      profiles = createProfileRegistry(next.profiles, next.defaultModel);
    },
  };
}
