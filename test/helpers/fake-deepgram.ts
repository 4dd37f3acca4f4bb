/**
 * A fake Deepgram on loopback speaking its real wire protocol:
 *
 * - the live WebSocket `/v1/listen` (query parameters as Deepgram reads
 *   them, `Authorization: Token …`): binary audio in (linear16, mulaw,
 *   alaw), and — paced by the audio itself, 10 ms frames with an energy
 *   gate standing in for speech — `SpeechStarted`, interim `Results` every
 *   `interimEveryMs` of speech, a final `Results` (`is_final`,
 *   `speech_final`) after `endpointing` ms of silence, `UtteranceEnd` after
 *   `utterance_end_ms`; `KeepAlive` recorded; `Finalize` → final results
 *   with `from_finalize` (nothing when no speech is pending, as Deepgram
 *   documents: a `from_finalize` response "may" come); `CloseStream` →
 *   `Metadata`, then close 1000; Deepgram's idle timeout: a socket that gets
 *   neither audio nor a text message for `idleTimeoutMs` (10 s, as Deepgram's)
 *   is closed with 1011 `NET-0001`. One stream may carry many turns (audio,
 *   `Finalize`, more audio…): its timestamps run on across them. Every
 *   socket opened is in `sessions` (so a test can count them);
 * - the pre-recorded REST API `POST /v1/listen` (utterances, duration);
 *
 * with injectable faults: a refused handshake, a close mid-stream, a close
 * with an error reason, an `Error` message or one that is not JSON, a slow
 * first message, a slow recognizer.
 *
 * A live stream opened without `encoding` carries a container (WAV, MP3,
 * Ogg, WebM…) that Deepgram reads itself: the fake decodes it as it arrives
 * with ffmpeg (as a stand-in for Deepgram's decoder) to 16 kHz linear16.
 */
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeAlaw, decodeUlaw } from "../../src/doors/ws/audio/g711.js";

/** What the fake does; replace `script` between tests. */
export interface DeepgramScript {
  /** Words of each utterance's final transcript. */
  words?: string[];
  /** Interim results every this many ms of speech audio (default 100). */
  interimEveryMs?: number;
  /** Delay of a final result after the end of speech or Finalize (the recognizer's latency; default 0). */
  finalDelayMs?: number;
  /** Delay before the first message of a stream (slow first byte). */
  firstMessageDelayMs?: number;
  /** Refuse the handshake (or the REST request) with this status and a Deepgram error body. */
  refuseStatus?: number;
  refuseBody?: Record<string, unknown>;
  /** Close with 1011 (`NET-0000`) after this many Results messages. */
  closeAfterResults?: number;
  /** Close with this code and reason after the first audio frame (e.g. 1008 DATA-0000). */
  errorClose?: { code: number; reason: string };
  /** Close with 1011 `NET-0001` when neither audio nor a text message came for this long (ms). Default 10 000, Deepgram's. */
  idleTimeoutMs?: number;
  /** Send this text message (an `Error` message, or text that is not JSON) after the first audio frame, and nothing more. */
  sendOnFirstAudio?: string;
}

/** One live stream the fake served. */
export interface LiveSession {
  readonly url: URL;
  readonly headers: IncomingMessage["headers"];
  /** Audio bytes received, as received. */
  readonly audio: Buffer[];
  /** Resolves once at least `bytes` audio bytes have been received (when they arrive, not by polling). */
  readonly waitForAudio: (bytes: number) => Promise<void>;
  /** Text messages the client sent (KeepAlive, Finalize, CloseStream). */
  readonly control: string[];
  /** Messages the fake sent. */
  readonly sent: Array<Record<string, unknown>>;
  /** Resolves with the close code once the socket closed; `byClient` when the gateway closed it first. */
  readonly closed: Promise<{ code: number; byClient: boolean }>;
}

/** A REST request the fake served. */
export interface RestRequest {
  readonly url: URL;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

/** The running fake. */
export interface FakeDeepgram {
  /** `http://127.0.0.1:PORT` (the provider's baseUrl). */
  readonly baseUrl: string;
  readonly sessions: LiveSession[];
  readonly rest: RestRequest[];
  script: DeepgramScript;
  /** Resolves with the next live session opened. */
  nextSession(): Promise<LiveSession>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The key the fake accepts. */
export const DEEPGRAM_KEY = "dg-test-key";
const DEFAULT_WORDS = ["Hello", "from", "Deepgram."];
const SPEECH_LEVEL = 1000;

function refusal(script: DeepgramScript, auth: string | undefined): { status: number; body: Record<string, unknown> } | undefined {
  if (auth !== `Token ${DEEPGRAM_KEY}`) return { status: 401, body: { err_code: "INVALID_AUTH", err_msg: "Invalid credentials.", request_id: "req-1" } };
  if (script.refuseStatus) return { status: script.refuseStatus, body: script.refuseBody ?? { err_code: "Bad Request", err_msg: "fake refusal", request_id: "req-1" } };
  return undefined;
}

/** Starts the fake on a free loopback port. */
export async function startFakeDeepgram(script: DeepgramScript = {}): Promise<FakeDeepgram> {
  const sessions: LiveSession[] = [];
  const rest: RestRequest[] = [];
  const waiters: Array<(s: LiveSession) => void> = [];
  const wss = new WebSocketServer({ noServer: true });
  const fake: FakeDeepgram = {
    baseUrl: "",
    sessions,
    rest,
    script,
    nextSession: () => new Promise((r) => waiters.push(r)),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const body = Buffer.concat(chunks);
      rest.push({ url, headers: req.headers, body });
      if (req.method !== "POST" || url.pathname !== "/v1/listen") {
        res.writeHead(404, { "content-type": "application/json" }).end('{"err_code":"NOT_FOUND","err_msg":"not found"}');
        return;
      }
      const refused = refusal(fake.script, req.headers.authorization);
      if (refused) {
        res.writeHead(refused.status, { "content-type": "application/json" }).end(JSON.stringify(refused.body));
        return;
      }
      const isWav = body.subarray(0, 4).toString("ascii") === "RIFF";
      const duration = isWav ? (body.length - 44) / 2 / body.readUInt32LE(24) : 1.5;
      const words = fake.script.words ?? DEFAULT_WORDS;
      const half = Math.ceil(words.length / 2);
      const utterances = [
        { start: 0, end: duration / 2, confidence: 0.99, channel: 0, transcript: words.slice(0, half).join(" "), words: [], id: "u1" },
        { start: duration / 2, end: duration, confidence: 0.99, channel: 0, transcript: words.slice(half).join(" "), words: [], id: "u2" },
      ];
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          metadata: { transaction_key: "deprecated", request_id: "req-1", sha256: "x", created: new Date().toISOString(), duration, channels: 1, models: ["m"] },
          results: { channels: [{ alternatives: [{ transcript: words.join(" "), confidence: 0.99, words: [] }] }], utterances },
        }),
      );
    });
  });

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://x");
    const refused = url.pathname === "/v1/listen" ? refusal(fake.script, req.headers.authorization) : { status: 404, body: { err_msg: "not found" } };
    if (refused) {
      const text = JSON.stringify(refused.body);
      socket.end(`HTTP/1.1 ${refused.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\ndg-error: ${String(refused.body["err_msg"])}\r\n\r\n${text}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveLive(ws, url, req.headers, { ...fake.script }));
  });

  function serveLive(ws: WebSocket, url: URL, headers: IncomingMessage["headers"], s: DeepgramScript): void {
    let serverClosed = false;
    let resolveClosed!: (v: { code: number; byClient: boolean }) => void;
    let received = 0;
    const audioWaiters: Array<{ bytes: number; resolve: () => void }> = [];
    const waitForAudio = (bytes: number): Promise<void> =>
      received >= bytes ? Promise.resolve() : new Promise((resolve) => audioWaiters.push({ bytes, resolve }));
    const session: LiveSession = { url, headers, audio: [], waitForAudio, control: [], sent: [], closed: new Promise((r) => (resolveClosed = r)) };
    sessions.push(session);
    for (const w of waiters.splice(0)) w(session);
    const q = url.searchParams;
    const container = !q.has("encoding");
    const encoding = q.get("encoding") ?? "linear16";
    const rate = container ? 16000 : Number(q.get("sample_rate") ?? 16000);
    const endpointing = q.get("endpointing") === "false" ? Infinity : Number(q.get("endpointing") ?? 10);
    const utteranceEnd = q.get("utterance_end_ms") ? Number(q.get("utterance_end_ms")) : Infinity;
    const interim = q.get("interim_results") === "true";
    const words = s.words ?? DEFAULT_WORDS;
    const frame = Math.round(rate / 100); // samples per 10 ms
    let carry: Buffer = Buffer.alloc(0);
    let ms = 0;
    let speaking = false;
    let segStart = 0;
    let lastVoiced = 0;
    let sinceInterim = 0;
    let revealed = 0;
    let awaitingUtteranceEnd = false;
    let results = 0;
    let chain: Promise<void> = s.firstMessageDelayMs ? sleep(s.firstMessageDelayMs) : Promise.resolve();
    let failed = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (ws.readyState !== ws.OPEN) return;
        serverClosed = true;
        ws.close(1011, "NET-0001 Deepgram did not receive audio data or a text message within the timeout window.");
      }, s.idleTimeoutMs ?? 10_000);
    };
    armIdle();

    const send = (m: Record<string, unknown>, delayMs = 0): void => {
      chain = chain.then(async () => {
        if (delayMs) await sleep(delayMs);
        if (ws.readyState !== ws.OPEN || failed) return;
        ws.send(JSON.stringify(m));
        session.sent.push(m);
        if (m["type"] === "Results" && ++results === s.closeAfterResults) {
          failed = true;
          serverClosed = true;
          ws.close(1011, "NET-0000 The service encountered an internal error");
        }
      });
    };
    const result = (text: string, isFinal: boolean, speechFinal: boolean, extra: Record<string, unknown> = {}, delayMs = 0): void => {
      send(
        {
          type: "Results",
          channel_index: [0, 1],
          duration: Math.max(0, (lastVoiced - segStart) / 1000),
          start: segStart / 1000,
          is_final: isFinal,
          speech_final: speechFinal,
          channel: { alternatives: [{ transcript: text, confidence: 0.98, words: text ? text.split(" ").map((w) => ({ word: w.toLowerCase(), punctuated_word: w })) : [] }] },
          metadata: { request_id: "req-1", model_info: { name: "general-nova-3", version: "1", arch: "nova-3" }, model_uuid: "m" },
          from_finalize: false,
          ...extra,
        },
        delayMs,
      );
    };
    const finalize = (speechFinal: boolean, extra: Record<string, unknown> = {}): void => {
      result(words.join(" "), true, speechFinal, extra, s.finalDelayMs ?? 0);
      speaking = false;
      revealed = 0;
      awaitingUtteranceEnd = true;
    };

    const levelOf = (pcm: Int16Array, from: number, n: number): number => {
      let max = 0;
      for (let i = from; i < from + n; i++) max = Math.max(max, Math.abs(pcm[i]!));
      return max;
    };

    const decoder = container
      ? spawn("ffmpeg", ["-hide_banner", "-nostdin", "-loglevel", "error", "-probesize", "32", "-analyzeduration", "0", "-i", "pipe:0", "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1"], { stdio: ["pipe", "pipe", "ignore"] })
      : undefined;
    decoder?.stdin.on("error", () => undefined);
    decoder?.stdout.on("data", (b: Buffer) => onPcm(b));
    const decoded = decoder ? new Promise<void>((r) => decoder.stdout.on("close", () => r())) : Promise.resolve();
    /** Waits until the container audio received so far has been decoded and heard (its end: Finalize, CloseStream). */
    const flushDecoder = (): Promise<void> => {
      decoder?.stdin.end();
      return decoded;
    };

    const onAudio = (bytes: Buffer): void => {
      session.audio.push(bytes);
      received += bytes.length;
      for (let i = audioWaiters.length - 1; i >= 0; i--) {
        if (received >= audioWaiters[i]!.bytes) audioWaiters.splice(i, 1)[0]!.resolve();
      }
      if (s.errorClose && !failed) {
        failed = true;
        serverClosed = true;
        ws.close(s.errorClose.code, s.errorClose.reason);
        return;
      }
      if (s.sendOnFirstAudio !== undefined) {
        if (!failed) ws.send(s.sendOnFirstAudio);
        failed = true;
        return;
      }
      if (decoder) decoder.stdin.write(bytes);
      else onPcm(bytes);
    };

    const onPcm = (bytes: Buffer): void => {
      let pcm: Int16Array;
      if (encoding === "mulaw") pcm = decodeUlaw(bytes);
      else if (encoding === "alaw") pcm = decodeAlaw(bytes);
      else {
        const all = Buffer.concat([carry, bytes]);
        const even = all.length - (all.length % 2);
        carry = Buffer.from(all.subarray(even));
        pcm = new Int16Array(new Uint8Array(all.subarray(0, even)).buffer);
      }
      for (let at = 0; at + frame <= pcm.length; at += frame) {
        ms += 10;
        const voiced = levelOf(pcm, at, frame) > SPEECH_LEVEL;
        if (voiced) {
          lastVoiced = ms;
          awaitingUtteranceEnd = false;
          if (!speaking) {
            speaking = true;
            segStart = ms - 10;
            sinceInterim = 0;
            if (q.get("vad_events") === "true") send({ type: "SpeechStarted", channel: [0], timestamp: segStart / 1000 });
          }
        }
        if (speaking) {
          sinceInterim += 10;
          if (interim && sinceInterim >= (s.interimEveryMs ?? 100) && revealed < words.length - 1) {
            sinceInterim = 0;
            revealed++;
            result(words.slice(0, revealed).join(" "), false, false);
          }
          if (ms - lastVoiced >= endpointing) finalize(true);
        } else if (awaitingUtteranceEnd && ms - lastVoiced >= utteranceEnd) {
          awaitingUtteranceEnd = false;
          send({ type: "UtteranceEnd", channel: [0, 1], last_word_end: lastVoiced / 1000 });
        }
      }
    };

    let control: Promise<void> = Promise.resolve();
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      armIdle();
      if (isBinary) return onAudio(data);
      const text = data.toString("utf8");
      session.control.push(text);
      const type = (JSON.parse(text) as { type?: string }).type;
      if (decoder && (type === "Finalize" || type === "CloseStream")) {
        control = control.then(flushDecoder).then(() => onControl(type));
        return;
      }
      onControl(type);
    });
    const onControl = (type: string | undefined): void => {
      if (type === "Finalize" && (speaking || revealed > 0)) finalize(false, { from_finalize: true });
      if (type === "CloseStream") {
        send({ type: "Metadata", transaction_key: "deprecated", request_id: "req-1", sha256: "x", created: new Date().toISOString(), duration: ms / 1000, channels: 1, models: ["m"], model_info: {} });
        chain = chain.then(() => {
          serverClosed = true;
          ws.close(1000);
        });
      }
    };
    ws.on("close", (code) => {
      clearTimeout(idleTimer);
      decoder?.kill();
      resolveClosed({ code, byClient: !serverClosed });
    });
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  (fake as { baseUrl: string }).baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
