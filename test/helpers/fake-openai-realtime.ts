/**
 * A fake OpenAI Realtime upstream (GA event names) on loopback: a `ws`
 * server at `/v1/realtime?model=…` that checks nothing (unless its `gate`
 * is set: see fake-azure-realtime.ts) but records the
 * upgrade (URL, headers) and every client event, answers `session.update`,
 * `input_audio_buffer.append`/`commit`, `conversation.item.create`,
 * `response.create` (transcript + audio deltas, then `response.done` with
 * usage) and `response.cancel`, and can be told to misbehave: refuse the
 * upgrade with a status, answer slowly (first byte), close mid-stream, or
 * answer `response.create` with an `error` event.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";

/** Faults and pacing, read when each connection opens / each response starts. */
export interface RealtimeFakeBehaviour {
  /** Refuse the upgrade with this HTTP status (and an OpenAI error body). */
  rejectStatus?: number;
  /** Wait this long before answering the upgrade (the first byte). */
  slowFirstByteMs?: number;
  /** Audio (and transcript) deltas per response (default 3). */
  deltas?: number;
  /** Pause between deltas (ms, default 5). */
  deltaDelayMs?: number;
  /** After this many audio deltas of a response: close the socket (`code`, or destroy it when absent). */
  closeMidStream?: { afterDeltas: number; code?: number };
  /** Answer `response.create` with this `error` event instead of a response. */
  errorOnResponse?: { code: string; message: string };
  /** Usage of each `response.done`. */
  usage?: { input: number; output: number };
  /** Pad `session.created`'s instructions with this many characters (an oversized frame). */
  sessionPadding?: number;
}

/** One connection the fake accepted. */
export interface RealtimeFakeConnection {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Client events received, parsed. */
  readonly events: Array<Record<string, any>>;
  /** Resolves when the socket closed, with the code the fake saw. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly socket: WebSocket;
}

/** The running fake. */
export interface FakeOpenAiRealtime {
  /** `http://127.0.0.1:PORT/v1`: the `baseUrl` of an `openai` provider. */
  readonly baseUrl: string;
  readonly connections: RealtimeFakeConnection[];
  /** Upgrade requests received (also refused ones). */
  readonly upgrades: Array<{ url: string; headers: IncomingHttpHeaders }>;
  behaviour: RealtimeFakeBehaviour;
  /**
   * Checks an upgrade before it is answered (after `slowFirstByteMs`): a
   * refusal (status + JSON body) or undefined to accept. None by default.
   */
  gate: ((url: string, headers: IncomingHttpHeaders) => { status: number; body: unknown } | undefined) | undefined;
  /** The upgrade handler, to serve the same fake on another server (a TLS one). */
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Resolves with the next accepted connection. */
  nextConnection(): Promise<RealtimeFakeConnection>;
  close(): Promise<void>;
}

/** Bytes of 100 ms of pcm16 at 24 kHz. */
export const DELTA_BYTES = 4800;

let counter = 0;
const id = (prefix: string): string => `${prefix}_fake${++counter}`;

function sessionJson(model: string, instructions: string): Record<string, unknown> {
  return {
    type: "realtime",
    object: "realtime.session",
    id: "sess_fake",
    model,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    output_modalities: ["audio"],
    instructions,
    audio: {
      input: {
        format: { type: "audio/pcm", rate: 24000 },
        turn_detection: { type: "server_vad", threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500, create_response: true, interrupt_response: true, idle_timeout_ms: null },
      },
      output: { format: { type: "audio/pcm", rate: 24000 }, voice: "marin", speed: 1 },
    },
    tools: [],
    tool_choice: "auto",
    max_output_tokens: "inf",
    tracing: null,
  };
}

function responseJson(rid: string, status: string, usage?: { input: number; output: number }): Record<string, unknown> {
  const r: Record<string, unknown> = {
    id: rid,
    object: "realtime.response",
    status,
    output: [],
    output_modalities: ["audio"],
    max_output_tokens: "inf",
    audio: { output: { format: { type: "audio/pcm", rate: 24000 }, voice: "marin" } },
  };
  if (usage) {
    r["usage"] = {
      total_tokens: usage.input + usage.output,
      input_tokens: usage.input,
      output_tokens: usage.output,
      input_token_details: { cached_tokens: 0, text_tokens: usage.input, audio_tokens: 0 },
      output_token_details: { text_tokens: 0, audio_tokens: usage.output },
    };
  }
  return r;
}

/** Starts the fake on a free loopback port. */
export async function startFakeOpenAiRealtime(behaviour: RealtimeFakeBehaviour = {}): Promise<FakeOpenAiRealtime> {
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true });
  const connections: RealtimeFakeConnection[] = [];
  const upgrades: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  let waiters: Array<(c: RealtimeFakeConnection) => void> = [];
  const fake: FakeOpenAiRealtime = {
    baseUrl: "",
    connections,
    upgrades,
    behaviour,
    gate: undefined,
    handleUpgrade: (req, socket, head) => onUpgrade(req, socket, head),
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
    close: async () => {
      for (const c of connections) c.socket.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  server.on("upgrade", (req, socket: Duplex, head) => onUpgrade(req, socket, head));

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const b = fake.behaviour;
    upgrades.push({ url: req.url ?? "", headers: req.headers });
    const answer = (): void => {
      if (socket.destroyed) return;
      if (b.rejectStatus) {
        const body = JSON.stringify({ error: { type: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided (fake)." } });
        socket.end(`HTTP/1.1 ${b.rejectStatus} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        return;
      }
      const refused = fake.gate?.(req.url ?? "", req.headers);
      if (refused) {
        const body = JSON.stringify(refused.body);
        socket.end(`HTTP/1.1 ${refused.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, req.url ?? "", req.headers));
    };
    if (b.slowFirstByteMs) setTimeout(answer, b.slowFirstByteMs);
    else answer();
  }

  function serve(ws: WebSocket, url: string, headers: IncomingHttpHeaders): void {
    const query = new URL(url, "http://x").searchParams;
    // Azure's preview form names the deployment instead of the model.
    const model = query.get("model") ?? query.get("deployment") ?? "";
    const events: Array<Record<string, any>> = [];
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    const conn: RealtimeFakeConnection = { url, headers, events, closed, socket: ws };
    connections.push(conn);
    const w = waiters;
    waiters = [];
    for (const f of w) f(conn);
    let instructions = "";
    const padding = "x".repeat(fake.behaviour.sessionPadding ?? 0);
    let running: { id: string; cancelled: boolean } | undefined;
    const send = (e: Record<string, unknown>): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ ...e, event_id: id("event") }));
    };
    send({ type: "session.created", session: sessionJson(model, padding) });
    ws.on("message", (data: Buffer) => {
      let e: Record<string, any>;
      try {
        e = JSON.parse(data.toString("utf8"));
      } catch {
        send({ type: "error", error: { type: "invalid_request_error", code: "invalid_json", message: "bad JSON", param: null, event_id: null } });
        return;
      }
      events.push(e);
      switch (e["type"]) {
        case "session.update":
          if (typeof e["session"]?.instructions === "string") instructions = e["session"].instructions;
          send({ type: "session.updated", session: sessionJson(model, instructions) });
          break;
        case "input_audio_buffer.append":
          break;
        case "input_audio_buffer.commit":
          send({ type: "input_audio_buffer.committed", previous_item_id: null, item_id: id("item") });
          break;
        case "conversation.item.create": {
          const item = { ...e["item"], id: e["item"]?.id ?? id("item"), object: "realtime.item", status: "completed" };
          send({ type: "conversation.item.added", previous_item_id: null, item });
          send({ type: "conversation.item.done", previous_item_id: null, item });
          break;
        }
        case "response.create":
          void respond();
          break;
        case "response.cancel":
          if (running) running.cancelled = true;
          break;
      }
    });

    async function respond(): Promise<void> {
      const b = fake.behaviour;
      if (b.errorOnResponse) {
        send({ type: "error", error: { type: "invalid_request_error", code: b.errorOnResponse.code, message: b.errorOnResponse.message, param: null, event_id: null } });
        return;
      }
      const rid = id("resp");
      const r = { id: rid, cancelled: false };
      running = r;
      const itemId = id("item");
      send({ type: "response.created", response: responseJson(rid, "in_progress") });
      const where = { response_id: rid, item_id: itemId, output_index: 0, content_index: 0 };
      const n = b.deltas ?? 3;
      for (let i = 0; i < n; i++) {
        await new Promise((res) => setTimeout(res, b.deltaDelayMs ?? 5));
        if (r.cancelled || ws.readyState !== ws.OPEN) break;
        send({ type: "response.output_audio_transcript.delta", ...where, delta: `word${i} ` });
        send({ type: "response.output_audio.delta", ...where, delta: Buffer.alloc(DELTA_BYTES, i + 1).toString("base64") });
        if (b.closeMidStream && i + 1 === b.closeMidStream.afterDeltas) {
          if (b.closeMidStream.code === undefined) ws.terminate();
          else ws.close(b.closeMidStream.code, "fake upstream closing");
          return;
        }
      }
      if (ws.readyState !== ws.OPEN) return;
      if (!r.cancelled) {
        send({ type: "response.output_audio.done", ...where });
        send({ type: "response.output_audio_transcript.done", ...where, transcript: Array.from({ length: n }, (_, i) => `word${i} `).join("") });
      }
      send({ type: "response.done", response: responseJson(rid, r.cancelled ? "cancelled" : "completed", b.usage ?? { input: 11, output: 7 }) });
      running = undefined;
    }
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  (fake as { baseUrl: string }).baseUrl = `http://127.0.0.1:${port}/v1`;
  return fake;
}
