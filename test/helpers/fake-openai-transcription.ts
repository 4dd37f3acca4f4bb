/**
 * A fake OpenAI transcription upstream (`POST /v1/audio/transcriptions`) on
 * loopback that watches each upload as it arrives: the file's bytes are
 * recorded piece by piece, in order, with the number of file bytes it had
 * when each form field arrived (so a test can see fields sent after the
 * file), and `waitForFileBytes(n)` resolves once `n` file bytes are in (and
 * rejects if the upload closes first) —
 * before the body has ended, when the gateway streams. It answers like
 * OpenAI only once the body has ended: SSE `transcript.text.delta` events
 * with `stream=true`, else `json`/`verbose_json`. Faults (`script`): close
 * the connection after some file bytes, answer an error status after the
 * whole body (400) or at once (503), end a transcript stream early, stop
 * reading the body until told.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import busboy from "busboy";

/** One upload the fake is receiving or has received. */
export interface TranscriptionUpload {
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  /** Fields in the order they came, each with the file bytes received before it (0: before the file). */
  readonly fields: Array<{ name: string; value: string; fileBytesBefore: number }>;
  readonly filename: string;
  readonly mimeType: string;
  /** The file's pieces as they arrived. */
  readonly pieces: Buffer[];
  /** File bytes received so far. */
  fileBytes: number;
  /** True once the whole body was read. */
  complete: boolean;
  /** Resolves when the connection closes, with whether the body was complete by then. */
  readonly closed: Promise<{ complete: boolean }>;
  /** Resolves once at least `n` file bytes have arrived. */
  waitForFileBytes(n: number): Promise<void>;
  /** The fields as a record (first value of each name). */
  readonly body: () => Record<string, string>;
}

/** Faults to inject into the next uploads. */
export interface TranscriptionScript {
  /** Destroy the connection once this many file bytes arrived, without answering. */
  closeAfterFileBytes?: number;
  /** Read the whole body, then answer with this status and an OpenAI error body. */
  statusAfterBody?: number;
  /** Answer at once (before reading the body) with this status… */
  statusAtOnce?: number;
  /** …for this many uploads (default: all), counted down here. */
  statusAtOnceTimes?: number;
  /** With `stream=true`: end the SSE body after this many deltas, without `transcript.text.done`. */
  cutAfterDeltas?: number;
  /** Stop reading the body once this many file bytes arrived, until `resumeReading()`. */
  pauseAfterFileBytes?: number;
}

/** The running fake. */
export interface FakeOpenAiTranscription {
  /** Base URL including `/v1`. */
  readonly baseUrl: string;
  readonly uploads: TranscriptionUpload[];
  /** Faults for the next uploads; `{}` for none. */
  script: TranscriptionScript;
  /** Resolves with the next upload as soon as its request head arrives. */
  nextUpload(): Promise<TranscriptionUpload>;
  /** Resumes reading a body paused by `pauseAfterFileBytes`. */
  resumeReading(): void;
  readonly deltas: readonly string[];
  close(): Promise<void>;
}

const DELTAS = ["Hello", " from", " the", " upstream."];

function sendError(res: ServerResponse, status: number, message: string, param: string | null): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message, type: status >= 500 ? "server_error" : "invalid_request_error", param, code: null } }));
}

/** Starts the fake on a free loopback port. */
export async function startFakeOpenAiTranscription(): Promise<FakeOpenAiTranscription> {
  const uploads: TranscriptionUpload[] = [];
  const waiters: Array<(u: TranscriptionUpload) => void> = [];
  const sockets = new Set<Socket>();
  let paused: IncomingMessage | undefined;
  const fake: FakeOpenAiTranscription = {
    baseUrl: "",
    uploads,
    script: {},
    deltas: DELTAS,
    nextUpload: () => new Promise((r) => waiters.push(r)),
    resumeReading: () => {
      const p = paused;
      paused = undefined;
      p?.resume();
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const script = { ...fake.script };
    let resolveClosed!: (v: { complete: boolean }) => void;
    const byteWaiters: Array<{ n: number; resolve: () => void; reject: (e: Error) => void }> = [];
    const up: TranscriptionUpload = {
      url: req.url ?? "",
      headers: req.headers,
      fields: [],
      filename: "",
      mimeType: "",
      pieces: [],
      fileBytes: 0,
      complete: false,
      closed: new Promise((r) => (resolveClosed = r)),
      waitForFileBytes: (n) =>
        up.fileBytes >= n ? Promise.resolve() : new Promise((resolve, reject) => byteWaiters.push({ n, resolve, reject })),
      body: () => {
        const out: Record<string, string> = {};
        for (const f of up.fields) out[f.name] ??= f.value;
        return out;
      },
    };
    uploads.push(up);
    for (const w of waiters.splice(0)) w(up);
    // The socket too: a request paused mid-body does not emit its own close.
    // A wait for bytes that can no longer come fails with what did come, instead of hanging.
    const onClose = (): void => {
      resolveClosed({ complete: up.complete });
      for (const w of byteWaiters.splice(0)) w.reject(new Error(`the upload closed after ${up.fileBytes} of ${w.n} file bytes`));
    };
    const socket = req.socket;
    socket.once("close", onClose);
    // A kept-alive socket serves the next request: this one's socket listener goes with it.
    req.on("close", () => {
      socket.off("close", onClose);
      onClose();
    });
    if (script.statusAtOnce && fake.script.statusAtOnceTimes !== undefined) {
      if (fake.script.statusAtOnceTimes <= 0) delete script.statusAtOnce;
      else fake.script.statusAtOnceTimes--;
    }
    if (script.statusAtOnce) {
      sendError(res, script.statusAtOnce, "The server is overloaded.", null);
      req.resume();
      return;
    }
    const bb = busboy({ headers: req.headers });
    bb.on("field", (name, value) => up.fields.push({ name, value, fileBytesBefore: up.fileBytes }));
    bb.on("file", (_name, stream, info) => {
      Object.assign(up, { filename: info.filename ?? "", mimeType: info.mimeType });
      stream.on("data", (c: Buffer) => {
        up.pieces.push(c);
        up.fileBytes += c.length;
        for (let i = byteWaiters.length - 1; i >= 0; i--) if (up.fileBytes >= byteWaiters[i]!.n) byteWaiters.splice(i, 1)[0]!.resolve();
        if (script.closeAfterFileBytes !== undefined && up.fileBytes >= script.closeAfterFileBytes) req.socket.destroy();
        if (script.pauseAfterFileBytes !== undefined && up.fileBytes >= script.pauseAfterFileBytes && !paused) {
          delete script.pauseAfterFileBytes;
          paused = req;
          req.pause();
        }
      });
    });
    bb.on("error", () => req.socket.destroy());
    bb.on("close", () => {
      up.complete = true;
      void answer(res, up, script);
    });
    req.pipe(bb);
  }

  async function answer(res: ServerResponse, up: TranscriptionUpload, script: TranscriptionScript): Promise<void> {
    const fields = up.body();
    if (script.statusAfterBody) return sendError(res, script.statusAfterBody, "Invalid file format. Supported formats: flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm", "file");
    if (!fields["model"]) return sendError(res, 400, "you must provide a model parameter", "model");
    if (up.fileBytes === 0) return sendError(res, 400, "The audio file is empty.", "file");
    const text = DELTAS.join("");
    if (fields["stream"] === "true") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const [i, d] of DELTAS.entries()) {
        if (i === script.cutAfterDeltas) return void res.end();
        res.write(`data: ${JSON.stringify({ type: "transcript.text.delta", delta: d })}\n\n`);
      }
      const usage = { type: "tokens", input_tokens: 14, input_token_details: { text_tokens: 0, audio_tokens: 14 }, output_tokens: 5, total_tokens: 19 };
      res.end(`data: ${JSON.stringify({ type: "transcript.text.done", text, usage })}\n\n`);
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    if (fields["response_format"] === "verbose_json") {
      res.end(
        JSON.stringify({
          task: "transcribe",
          language: fields["language"] || "english",
          duration: 2.5,
          text,
          segments: [{ id: 0, seek: 0, start: 0, end: 2.5, text: ` ${text}`, tokens: [1], temperature: 0, avg_logprob: -0.2, compression_ratio: 1, no_speech_prob: 0 }],
          usage: { type: "duration", seconds: 3 },
        }),
      );
    } else res.end(JSON.stringify({ text, usage: { type: "duration", seconds: 3 } }));
  }

  const server = createServer((req, res) => {
    if (req.method === "POST" && req.url?.split("?")[0]?.endsWith("/audio/transcriptions")) handle(req, res);
    else sendError(res, 404, `no route ${req.method} ${req.url}`, null);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  Object.assign(fake, { baseUrl: `http://127.0.0.1:${port}/v1` });
  return fake;
}
