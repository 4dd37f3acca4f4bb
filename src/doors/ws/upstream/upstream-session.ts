/**
 * A realtime session relayed to an upstream speech-to-speech model (OpenAI
 * Realtime, `openai/gpt-realtime`): the door opens the upstream WebSocket
 * and passes client and server events through unchanged, so the client
 * speaks the same protocol as with a cascade profile. The gateway keeps its
 * own rules on the way:
 *
 * - Client events must be JSON objects with a `type` (else an `error` event,
 *   as in a cascade session); raw binary frames become
 *   `input_audio_buffer.append`; `session.model` may only name this
 *   profile's model (the key was checked for it). Events sent before the
 *   upstream is open wait, in order (at most 4 frames' worth).
 * - Each upstream response is admitted against the gateway key's limits
 *   when it starts (`response.created`; a refusal cancels it upstream and is
 *   an `error` event) and charged its `response.done` usage; one log line
 *   and metrics per response (tokens, output audio seconds), and one per
 *   session (duration, input/output audio seconds, tokens).
 * - Overload, as in a cascade session: "a response" is each upstream
 *   response, whoever started it (the client's `response.create` or the
 *   upstream's own turn detection). A client `response.create` is checked
 *   before it is forwarded (`Admission.refusal`, nothing taken); past
 *   capacity it is not sent upstream: an `error` event `server_overloaded`,
 *   then close 1013. Each upstream response takes one admission slot at
 *   `response.created` (`Admission.admit`, through `enter`'s checks) and
 *   frees it once, at `response.done`, or when the session ends however it
 *   ends (client gone, upstream failure or close, cancel); refused there
 *   for overload, it is cancelled upstream and the session closes the same
 *   way. Between responses a session holds no slot, so idle sessions never
 *   starve new ones.
 * - Backpressure: while the client's socket holds `highWaterBytes`, the
 *   upstream socket is paused (TCP then slows the upstream).
 * - Failures: an upstream that cannot be reached, refuses the upgrade, does
 *   not open its session within `connectTimeoutMs`, or closes abnormally is
 *   an `error` event (`server_error`, code `upstream_*`, the reason) and
 *   then close 1011 (1013, try again later, when the upstream said 429 or
 *   5xx). The gateway out of file descriptors at the dial (EMFILE/ENFILE)
 *   is its own overload: code `server_overloaded`, close 1013. An upstream
 *   that ends its session normally (1000) closes the client with 1000.
 * - The client going away closes the upstream at once (close frame, then
 *   the socket is destroyed if the upstream does not answer within 1 s).
 */
import WebSocket, { type RawData } from "ws";
import { isOverloadRefusal, type Admission, type Lease, type Principal } from "../../../engine/admission.js";
import { Code } from "../../../engine/code.js";
import { SpillwayError } from "../../../engine/errors.js";
import type { Route } from "../../../engine/router.js";
import { openAiErrorObject } from "../../http/shapes/openai/errors.js";
import { gatewayOutOfDescriptors, outOfDescriptors } from "../../../engine/limits/out-of-descriptors.js";
import { socketTlsOptions } from "../../../providers/shared/upstream-transport.js";
import { recordRequest, type Observability } from "../../../observability/observability.js";
import type { RealtimeProblem } from "../client-events.js";
import { newId, Outbox } from "../outbox.js";
import { refuseForOverload } from "../overload-close.js";
import type { SessionSocket } from "../session.js";
import { RelayMeter, usageOf } from "./relay-meter.js";
import type { UpstreamTarget } from "./upstream-target.js";

/** Limits of a relayed session. */
export interface UpstreamSessionLimits {
  /** Time without a client event, while no response runs, after which the session is closed (ms). */
  readonly idleMs: number;
  /** Largest frame either way (bytes); the upstream socket refuses larger ones. */
  readonly maxFrameBytes: number;
  /** Buffered bytes on the client socket above which the upstream is paused. */
  readonly highWaterBytes: number;
  /** Connect + upstream `session.created` (ms). */
  readonly connectTimeoutMs: number;
}

/** What a relayed session is made with. */
export interface UpstreamSessionOptions {
  readonly socket: SessionSocket;
  readonly target: UpstreamTarget;
  /** The engine route of `target.id` (labels of logs and metrics). */
  readonly route: Route;
  /** The realtime profile the client asked for. */
  readonly profileId: string;
  readonly beta: boolean;
  /** `?intent=transcription`: passed on to the upstream. */
  readonly transcription: boolean;
  readonly principal: Principal | undefined;
  readonly admission: Admission;
  readonly limits: UpstreamSessionLimits;
  readonly observe?: ((event: Record<string, unknown>) => void) | undefined;
  readonly obs?: Observability | undefined;
}

interface RelayedResponse {
  readonly id: string;
  readonly startedAt: number;
  firstAudioAt: number | undefined;
  audioSeconds: number;
  deltas: number;
  lease: Lease | undefined;
  /** Tokens to charge once the lease arrives (the response ended first). */
  endedTokens: number | undefined;
}

/** Client frames held while the upstream connects, at most this many frame sizes. */
const PENDING_FRAMES = 4;
/** How long a closing upstream may take to answer its close frame. */
const CLOSE_GRACE_MS = 1000;

/** One relayed session (same surface as `RealtimeSession` for the door). */
export class UpstreamRealtimeSession {
  /** The session's id in logs. */
  readonly id = newId("relay");
  private readonly outbox: Outbox;
  private upstream: WebSocket | undefined;
  private state: "connecting" | "open" | "closed" = "connecting";
  private sessionOpened = false;
  private readonly pending: string[] = [];
  private pendingBytes = 0;
  private readonly responses = new Map<string, RelayedResponse>();
  private readonly meter = new RelayMeter();
  private paused = false;
  private readonly startedAt = performance.now();
  private lastActivity = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private failure: { code: string; message: string } | undefined;
  private finished = false;

  constructor(private readonly opts: UpstreamSessionOptions) {
    this.outbox = new Outbox(opts.socket, opts.beta, opts.limits.highWaterBytes, opts.observe);
  }

  /** True while an upstream response runs. */
  get busy(): boolean {
    return this.responses.size > 0;
  }

  /** Opens the upstream socket; client events wait until it is open. */
  start(): void {
    const { target, limits } = this.opts;
    const url = this.opts.transcription ? `${target.url}&intent=transcription` : target.url;
    const headers: Record<string, string> = { ...target.headers };
    if (this.opts.beta) headers["openai-beta"] = "realtime=v1";
    const ws = new WebSocket(url, { headers, maxPayload: limits.maxFrameBytes * 2, handshakeTimeout: limits.connectTimeoutMs, perMessageDeflate: false, ...socketTlsOptions(target.provider, url) });
    this.upstream = ws;
    this.connectTimer = setTimeout(() => {
      this.fail("upstream_timeout", `The upstream realtime model '${target.id}' did not open its session within ${limits.connectTimeoutMs} ms.`, 1011);
    }, limits.connectTimeoutMs);
    this.connectTimer.unref();
    ws.on("unexpected-response", (_req, res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        if (size < 4096) parts.push(d);
        size += d.length;
      });
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        const detail = upstreamMessage(Buffer.concat(parts).toString("utf8"));
        this.fail(
          "upstream_refused",
          `The upstream realtime model '${target.id}' refused the session: HTTP ${status}${detail ? ` (${detail})` : ""}.`,
          status === 429 || status >= 500 ? 1013 : 1011,
        );
      });
      res.on("error", () => this.fail("upstream_refused", `The upstream realtime model '${target.id}' refused the session: HTTP ${res.statusCode}.`, 1011));
    });
    ws.on("open", () => {
      if (this.state !== "connecting") return;
      this.state = "open";
      for (const text of this.pending.splice(0)) ws.send(text);
      this.pendingBytes = 0;
    });
    ws.on("message", (data, isBinary) => this.fromUpstream(data, isBinary));
    ws.on("error", (e) => {
      // Out of file descriptors is this gateway's overload, not the upstream's failure: try again later (1013).
      if (outOfDescriptors(e)) this.fail("server_overloaded", gatewayOutOfDescriptors(target.id).message, 1013);
      else this.fail("upstream_unavailable", `The upstream realtime model '${target.id}' failed: ${e.message}.`, 1011);
    });
    ws.on("close", (code, reason) => this.upstreamClosed(code, reason.toString("utf8")));
    this.armIdle(this.opts.limits.idleMs);
  }

  /** A text frame from the client. */
  handleText(text: string): void {
    this.lastActivity = performance.now();
    const parsed = parseRelayed(text);
    if ("problem" in parsed) {
      this.error(parsed.problem);
      return;
    }
    const ev = parsed.event;
    let out = text;
    if (ev["type"] === "session.update") {
      const session = ev["session"] as Record<string, unknown> | undefined;
      const model = session?.["model"];
      if (model !== undefined) {
        if (model !== this.opts.profileId && model !== this.opts.target.model) {
          this.error({
            code: "invalid_value",
            message: `Invalid 'session.model': this session is '${this.opts.profileId}'; open a new session for another model.`,
            param: "session.model",
            eventId: typeof ev["event_id"] === "string" ? ev["event_id"] : null,
          });
          return;
        }
        out = JSON.stringify({ ...ev, session: { ...session, model: this.opts.target.model } });
      }
    } else if (ev["type"] === "response.create") {
      const refused = this.opts.admission.refusal();
      if (refused) {
        // Past capacity: not sent upstream; error event, close 1013 (the client socket's close ends the upstream).
        refuseForOverload(this.outbox, this.opts.socket, typeof ev["event_id"] === "string" ? ev["event_id"] : null, refused);
        return;
      }
    }
    this.meter.client(ev);
    this.forward(out);
  }

  /** A binary frame: raw audio, sent on as `input_audio_buffer.append`. */
  handleBinary(bytes: Uint8Array): void {
    this.lastActivity = performance.now();
    const ev = { type: "input_audio_buffer.append", audio: Buffer.from(bytes).toString("base64") };
    this.meter.client(ev);
    this.forward(JSON.stringify(ev));
  }

  /** A client frame over the limit: an error event, then close 1009. */
  frameTooBig(bytes: number, limit: number): void {
    this.error({
      code: "message_too_big",
      message: `A WebSocket frame of ${bytes} bytes is over the limit of ${limit} bytes; send audio in smaller appends.`,
      param: null,
      eventId: null,
    });
    this.opts.socket.end(1009, "message too big");
  }

  /** uWS `drain`: resume reading the upstream once the client took enough. */
  onDrain(): void {
    if (this.paused && this.opts.socket.getBufferedAmount() < this.opts.limits.highWaterBytes) {
      this.paused = false;
      this.upstream?.resume();
    }
  }

  /** The server is going away: an `error` event, then close 1001. */
  shutdown(message: string): void {
    this.error({ code: "server_shutting_down", message, param: null, eventId: null }, "server_error");
    this.opts.socket.end(1001, "server shutting down");
  }

  /** The client socket closed: the upstream is closed at once. */
  close(): void {
    this.outbox.onClose();
    this.state = "closed";
    this.closeUpstream();
    this.finish(this.failure ? undefined : "client closed");
  }

  private forward(text: string): void {
    if (this.state === "open") {
      this.upstream!.send(text);
      return;
    }
    if (this.state === "closed") return;
    if (this.pendingBytes + text.length > PENDING_FRAMES * this.opts.limits.maxFrameBytes) {
      this.fail("upstream_not_ready", "Too many events were sent before the upstream realtime session opened.", 1013);
      return;
    }
    this.pending.push(text);
    this.pendingBytes += text.length;
  }

  private fromUpstream(data: RawData, isBinary: boolean): void {
    if (this.state === "closed" || isBinary) return;
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
    if (!this.sessionOpened) {
      this.sessionOpened = true;
      clearTimeout(this.connectTimer);
    }
    let ev: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) ev = parsed as Record<string, unknown>;
    } catch {
      // Not JSON: passed on as it is; the client's library will say so.
    }
    if (ev) this.account(ev);
    if (ev) this.opts.observe?.(ev);
    const socket = this.opts.socket;
    socket.cork(() => socket.send(text));
    if (!this.paused && socket.getBufferedAmount() >= this.opts.limits.highWaterBytes) {
      this.paused = true;
      this.upstream?.pause();
    }
  }

  /** Metering and admission of upstream responses. */
  private account(ev: Record<string, unknown>): void {
    const seconds = this.meter.server(ev);
    const type = ev["type"];
    const response = (ev["response"] ?? {}) as Record<string, unknown>;
    if (seconds > 0) {
      const r = this.responses.get(String(ev["response_id"]));
      if (r) {
        r.audioSeconds += seconds;
        r.firstAudioAt ??= performance.now();
        r.deltas++;
      }
      return;
    }
    if (type === "response.created" && typeof response["id"] === "string") this.responseStarted(response["id"]);
    else if (type === "response.done" && typeof response["id"] === "string") this.responseDone(response);
  }

  private responseStarted(id: string): void {
    const r: RelayedResponse = { id, startedAt: performance.now(), firstAudioAt: undefined, audioSeconds: 0, deltas: 0, lease: undefined, endedTokens: undefined };
    this.responses.set(id, r);
    this.opts.admission.admit(this.opts.principal, [this.opts.target.id]).then(
      (lease) => {
        if (r.endedTokens !== undefined) lease.release(r.endedTokens);
        else r.lease = lease;
      },
      (e: unknown) => {
        const err = SpillwayError.from(e);
        this.responses.delete(id);
        if (this.state === "closed") return;
        if (isOverloadRefusal(err)) {
          // Past capacity when the upstream started it (its own turn detection, or a race with the check above).
          if (this.state === "open") this.upstream!.send(JSON.stringify({ type: "response.cancel", response_id: id }));
          refuseForOverload(this.outbox, this.opts.socket, null);
          return;
        }
        const o = openAiErrorObject(err, "rate_limit_exceeded");
        this.error({ code: o.code ?? "rate_limit_exceeded", message: o.message, param: null, eventId: null }, o.type);
        if (this.state === "open") this.upstream!.send(JSON.stringify({ type: "response.cancel", response_id: id }));
      },
    );
  }

  private responseDone(response: Record<string, unknown>): void {
    const id = String(response["id"]);
    const r = this.responses.get(id);
    if (!r) return;
    this.responses.delete(id);
    this.lastActivity = performance.now();
    const usage = usageOf(response["usage"], r.audioSeconds);
    this.meter.tokens(usage);
    if (r.lease) r.lease.release(usage.totalTokens);
    else r.endedTokens = usage.totalTokens;
    const status = typeof response["status"] === "string" ? response["status"] : "completed";
    if (!this.opts.obs) return;
    const details = response["status_details"] as { error?: { message?: unknown } } | undefined;
    const reason = typeof details?.error?.message === "string" ? details.error.message : "the upstream response failed";
    const failed = status === "failed" ? new SpillwayError(Code.Unavailable, reason, { fromUpstream: true }) : undefined;
    const now = performance.now();
    recordRequest(this.opts.obs, {
      requestId: id,
      door: "ws",
      route: "/v1/realtime",
      status: status === "completed" ? "ok" : status,
      startedAt: r.startedAt,
      summary: {
        id,
        route: this.opts.route,
        labels: {},
        outcome: failed ?? "ok",
        finishReason: undefined,
        usage,
        chunks: r.deltas,
        startedAt: r.startedAt,
        firstChunkAt: r.firstAudioAt,
        endedAt: now,
      },
      clientDisconnected: false,
    });
  }

  private upstreamClosed(code: number, reason: string): void {
    if (this.state === "closed") return;
    if (code === 1000) {
      this.state = "closed";
      this.opts.socket.end(1000, "upstream session ended");
      return;
    }
    this.fail("upstream_closed", `The upstream realtime session closed unexpectedly (code ${code}${reason ? `: ${reason}` : ""}).`, 1011);
  }

  /** An upstream failure: an `error` event, then close `closeCode`; the upstream is dropped. */
  private fail(code: string, message: string, closeCode: number): void {
    if (this.state === "closed") return;
    this.failure = { code, message };
    this.error({ code, message, param: null, eventId: null }, "server_error");
    this.state = "closed";
    this.closeUpstream();
    this.opts.socket.end(closeCode, code.replace(/_/g, " "));
  }

  private closeUpstream(): void {
    clearTimeout(this.connectTimer);
    const ws = this.upstream;
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
    } else if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000, "client went away");
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    }
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      if (this.finished) return;
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
      this.opts.socket.end(1000, "idle timeout");
    }, Math.max(0, ms));
    this.idleTimer.unref();
  }

  /** Once, when the client socket is gone: leases released, the session's log line and metrics. */
  private finish(reason: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idleTimer);
    for (const r of this.responses.values()) {
      if (r.lease) r.lease.release(0);
      else r.endedTokens = 0;
    }
    this.responses.clear();
    const obs = this.opts.obs;
    if (!obs) return;
    const provider = this.opts.route.provider.name;
    if (this.meter.inputAudioSeconds > 0) obs.metrics.audioSeconds.inc({ direction: "in", provider }, this.meter.inputAudioSeconds);
    obs.logger.info(
      {
        sessionId: this.id,
        door: "ws",
        route: "/v1/realtime",
        model: this.opts.profileId,
        upstream: this.opts.target.id,
        provider,
        durationMs: Math.round(performance.now() - this.startedAt),
        inputAudioSeconds: round2(this.meter.inputAudioSeconds),
        outputAudioSeconds: round2(this.meter.outputAudioSeconds),
        inputTokens: this.meter.inputTokens,
        outputTokens: this.meter.outputTokens,
        ended: reason,
        error: this.failure,
      },
      "realtime session finished",
    );
  }

  private error(p: RealtimeProblem, type = "invalid_request_error"): void {
    this.outbox.send({ type: "error", error: { type, code: p.code, message: p.message, param: p.param, event_id: p.eventId } });
  }
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** A client event to relay: a JSON object with a string `type`, or the problem. */
function parseRelayed(text: string): { event: Record<string, unknown> } | { problem: RealtimeProblem } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: { code: "invalid_json", message: `The event could not be parsed as JSON (${(e as Error).message}).`, param: null, eventId: null } };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { problem: { code: "invalid_event", message: "An event must be a JSON object.", param: null, eventId: null } };
  }
  const obj = raw as Record<string, unknown>;
  if (typeof obj["type"] !== "string") {
    const eventId = typeof obj["event_id"] === "string" ? obj["event_id"] : null;
    return { problem: { code: "missing_required_parameter", message: "Missing required parameter: 'type'.", param: "type", eventId } };
  }
  return { event: obj };
}

/** The message of an upstream's JSON error body, else the start of the body. */
function upstreamMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } };
    if (typeof j.error?.message === "string") return j.error.message.slice(0, 300);
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200);
}
