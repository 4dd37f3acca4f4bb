/**
 * A fake ElevenLabs on loopback speaking its real wire protocol:
 *
 * - `POST /v1/text-to-speech/{voice_id}/stream?output_format=…` with
 *   `xi-api-key`: the audio as a chunked body, in pieces as it is "made"
 *   (`pcm_<rate>` a tone, `ulaw_8000` / `alaw_8000` the same tone in G.711,
 *   `mp3_*` fixed bytes), FastAPI-style 422s and `{"detail": {"status",
 *   "message"}}` refusals;
 * - the input-streaming WebSocket `/v1/text-to-speech/{voice_id}/stream-input`:
 *   a first message with `xi_api_key` and `voice_settings`, text buffered
 *   until `flush`, `try_trigger_generation` with `chunk_length_schedule[0]`
 *   characters, or the end (`{"text": ""}`); `{"audio": base64}` messages
 *   per generation, then `{"isFinal": true}` and close 1000;
 *
 * Audio length is proportional to the text (`msPerChar`), every generation
 * starts `firstByteMs` after it is triggered. Faults: a status instead of
 * audio, a close mid-stream, an error message, a slow first byte.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { encodeAlaw, encodeUlaw } from "../../src/doors/ws/audio/g711.js";

/** The key the fake accepts. */
export const ELEVENLABS_KEY = "xi-test-key";
/** What the fake answers for any mp3 format. */
export const FAKE_MP3 = Buffer.from("ID3\u0004\u0000\u0000fake-mp3-frames-".repeat(40), "latin1");

/** What the fake does; replace `script` between tests. */
export interface ElevenLabsScript {
  /** Answer HTTP requests with this status and body instead of audio. */
  status?: number;
  body?: unknown;
  /** Only the first N HTTP requests get `status` (then audio): for retries. */
  statusTimes?: number;
  /** ms before the first audio of a generation (default 5). */
  firstByteMs?: number;
  /** ms of audio per character of text (default 10). */
  msPerChar?: number;
  /** Pause between audio pieces (default 2 ms); pieces are 100 ms of audio. */
  pieceDelayMs?: number;
  /** Close (HTTP: destroy the socket; WS: close 1011) after this many audio pieces. */
  closeAfterPieces?: number;
  /** WS: answer the first message with this error message, then close 1008. */
  errorMessage?: Record<string, unknown>;
}

/** One input-streaming socket the fake served. */
export interface InputStream {
  readonly url: URL;
  readonly headers: IncomingMessage["headers"];
  /** Messages the client sent, parsed. */
  readonly received: Array<Record<string, any>>;
  /** Audio bytes sent (decoded). */
  readonly audio: Buffer[];
  /** Resolves once closed; `byClient` when the gateway closed it before `isFinal`. */
  readonly closed: Promise<{ code: number; byClient: boolean }>;
  /** performance.now() of each generation's trigger. */
  readonly triggers: number[];
}

/** One HTTP request the fake served. */
export interface SpeechRequest {
  readonly url: URL;
  readonly headers: IncomingMessage["headers"];
  readonly body: Record<string, any>;
  /** Audio bytes sent. */
  readonly audio: Buffer[];
  /** Set when the gateway closed the request before the fake finished. */
  abortedAt?: number;
}

/** The running fake. */
export interface FakeElevenLabs {
  /** `http://127.0.0.1:PORT` (the provider's baseUrl). */
  readonly baseUrl: string;
  readonly requests: SpeechRequest[];
  readonly streams: InputStream[];
  script: ElevenLabsScript;
  nextStream(): Promise<InputStream>;
  nextAbort(): Promise<SpeechRequest>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `ms` of a 300 Hz tone in `format` (`pcm_24000`, `ulaw_8000`, …). */
export function fakeAudio(format: string, ms: number): Buffer {
  if (format.startsWith("mp3")) return FAKE_MP3;
  const rate = Number(format.split("_")[1] ?? 24000);
  const n = Math.round((rate * ms) / 1000);
  const s = new Int16Array(n);
  for (let i = 0; i < n; i++) s[i] = Math.round(Math.sin((2 * Math.PI * 300 * i) / rate) * 6000);
  if (format.startsWith("ulaw")) return Buffer.from(encodeUlaw(s));
  if (format.startsWith("alaw")) return Buffer.from(encodeAlaw(s));
  return Buffer.from(s.buffer);
}

/** Cuts `audio` of `format` into 100 ms pieces. */
function pieces(format: string, audio: Buffer): Buffer[] {
  if (format.startsWith("mp3")) return [0, 1, 2].map((i) => audio.subarray(Math.floor((i * audio.length) / 3), Math.floor(((i + 1) * audio.length) / 3)));
  const rate = Number(format.split("_")[1] ?? 24000);
  const size = format.startsWith("pcm") ? rate / 5 : rate / 10;
  const out: Buffer[] = [];
  for (let i = 0; i < audio.length; i += size) out.push(audio.subarray(i, i + size));
  return out;
}

const VOICE_PATH = /^\/v1\/text-to-speech\/([^/]+)\/(stream|stream-input)$/;

/** Starts the fake on a free loopback port. */
export async function startFakeElevenLabs(script: ElevenLabsScript = {}): Promise<FakeElevenLabs> {
  const requests: SpeechRequest[] = [];
  const streams: InputStream[] = [];
  const streamWaiters: Array<(s: InputStream) => void> = [];
  const abortWaiters: Array<(r: SpeechRequest) => void> = [];
  const wss = new WebSocketServer({ noServer: true });
  let failures = 0;
  const fake: FakeElevenLabs = {
    baseUrl: "",
    requests,
    streams,
    script,
    nextStream: () => new Promise((r) => streamWaiters.push(r)),
    nextAbort: () => new Promise((r) => abortWaiters.push(r)),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const detail = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };

  async function speech(req: IncomingMessage, res: ServerResponse, url: URL, voice: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, any>;
    const rec: SpeechRequest = { url, headers: req.headers, body, audio: [] };
    requests.push(rec);
    res.on("close", () => {
      if (!res.writableFinished) {
        rec.abortedAt = performance.now();
        for (const w of abortWaiters.splice(0)) w(rec);
      }
    });
    const s = fake.script;
    if (req.headers["xi-api-key"] !== ELEVENLABS_KEY) return detail(res, 401, { detail: { status: "invalid_api_key", message: "Invalid API key" } });
    if (s.status && (s.statusTimes === undefined || failures++ < s.statusTimes)) return detail(res, s.status, s.body ?? { detail: { status: "error", message: "fake failure" } });
    if (voice === "missing") return detail(res, 404, { detail: { status: "voice_not_found", message: `A voice with the voice_id ${voice} was not found.` } });
    if (typeof body["text"] !== "string" || !body["text"]) return detail(res, 422, { detail: [{ loc: ["body", "text"], msg: "field required", type: "value_error.missing" }] });
    const format = url.searchParams.get("output_format") ?? "mp3_44100_128";
    await sleep(s.firstByteMs ?? 5);
    if (res.destroyed) return;
    res.writeHead(200, { "content-type": format.startsWith("mp3") ? "audio/mpeg" : "application/octet-stream", "transfer-encoding": "chunked" });
    const all = pieces(format, fakeAudio(format, body["text"].length * (s.msPerChar ?? 10)));
    for (let i = 0; i < all.length; i++) {
      if (res.destroyed) return;
      if (s.closeAfterPieces === i) {
        res.socket?.destroy();
        return;
      }
      res.write(all[i]);
      rec.audio.push(all[i]!);
      await sleep(s.pieceDelayMs ?? 2);
    }
    res.end();
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const m = VOICE_PATH.exec(url.pathname);
    if (req.method !== "POST" || !m || m[2] !== "stream") return detail(res, 404, { detail: "Not Found" });
    void speech(req, res, url, decodeURIComponent(m[1]!)).catch(() => res.destroy());
  });

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://x");
    const m = VOICE_PATH.exec(url.pathname);
    if (!m || m[2] !== "stream-input") {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveInput(ws, url, req.headers, { ...fake.script }));
  });

  function serveInput(ws: WebSocket, url: URL, headers: IncomingMessage["headers"], s: ElevenLabsScript): void {
    let resolveClosed!: (v: { code: number; byClient: boolean }) => void;
    const stream: InputStream = { url, headers, received: [], audio: [], triggers: [], closed: new Promise((r) => (resolveClosed = r)) };
    streams.push(stream);
    for (const w of streamWaiters.splice(0)) w(stream);
    const format = url.searchParams.get("output_format") ?? "mp3_44100_128";
    let schedule = 120;
    let buffered = "";
    let sentPieces = 0;
    let finished = false;
    let chain: Promise<void> = Promise.resolve();
    const generate = (text: string): void => {
      stream.triggers.push(performance.now());
      chain = chain.then(async () => {
        await sleep(s.firstByteMs ?? 5);
        for (const p of pieces(format, fakeAudio(format, text.length * (s.msPerChar ?? 10)))) {
          if (ws.readyState !== ws.OPEN || finished) return;
          if (s.closeAfterPieces === sentPieces) {
            finished = true;
            ws.close(1011, "internal error");
            return;
          }
          sentPieces++;
          ws.send(JSON.stringify({ audio: p.toString("base64"), isFinal: null, normalizedAlignment: null, alignment: null }));
          stream.audio.push(p);
          await sleep(s.pieceDelayMs ?? 2);
        }
      });
    };
    ws.on("message", (data: Buffer) => {
      const msg = JSON.parse(data.toString("utf8")) as Record<string, any>;
      stream.received.push(msg);
      if (stream.received.length === 1) {
        if (s.errorMessage) {
          finished = true;
          ws.send(JSON.stringify(s.errorMessage));
          ws.close(1008, typeof s.errorMessage["error"] === "string" ? s.errorMessage["error"] : "error");
          return;
        }
        const key = msg["xi_api_key"] ?? headers["xi-api-key"];
        if (key !== ELEVENLABS_KEY) {
          finished = true;
          ws.send(JSON.stringify({ message: "Invalid API key", error: "invalid_api_key", code: 1008 }));
          ws.close(1008, "invalid_api_key");
          return;
        }
        const sched = msg["generation_config"]?.chunk_length_schedule;
        if (Array.isArray(sched) && typeof sched[0] === "number") schedule = sched[0];
        return;
      }
      const text = typeof msg["text"] === "string" ? msg["text"] : "";
      if (text === "") {
        if (buffered.trim()) generate(buffered);
        buffered = "";
        chain = chain.then(() => {
          if (ws.readyState !== ws.OPEN || finished) return;
          finished = true;
          ws.send(JSON.stringify({ isFinal: true }));
          ws.close(1000);
        });
        return;
      }
      buffered += text;
      if (msg["flush"] === true || (msg["try_trigger_generation"] === true && buffered.length >= schedule)) {
        generate(buffered);
        buffered = "";
      }
    });
    ws.on("close", (code) => resolveClosed({ code, byClient: !finished }));
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  (fake as { baseUrl: string }).baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
