/**
 * A fake OpenAI audio upstream on loopback speaking the real wire formats of
 * `POST /v1/audio/speech` (raw bytes, or SSE `speech.audio.delta` events
 * with usage) and `POST /v1/audio/transcriptions` (multipart in; SSE
 * `transcript.text.delta` events, `json` or `verbose_json` out). It records
 * what it received, multipart fields and file bytes included.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import busboy from "busboy";

/** A request the fake received. */
export interface AudioRequest {
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  /** The JSON body (speech) or the multipart fields (transcriptions). */
  readonly body: Record<string, any>;
  /** The uploaded file (transcriptions). */
  readonly file?: { name: string; mimeType: string; bytes: Buffer };
}

/** The running fake. */
export interface FakeAudioUpstream {
  /** Base URL including `/v1`. */
  readonly baseUrl: string;
  readonly requests: AudioRequest[];
  /** The audio bytes every speech request answers with, in three pieces. */
  readonly speechBytes: Buffer;
  /** Usage sent in `speech.audio.done`. */
  readonly speechUsage: { input_tokens: number; output_tokens: number; total_tokens: number };
  /** Text deltas of a streamed transcription. */
  readonly transcriptDeltas: readonly string[];
  /** Segments of a `verbose_json` transcription. */
  readonly segments: ReadonlyArray<{ start: number; end: number; text: string }>;
  /** Resolves when the gateway closes a speech request before the fake finished it. */
  nextAbort(): Promise<AudioRequest>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fail(res: ServerResponse, status: number, message: string, param: string | null): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }));
}

/** Starts the fake on a free loopback port; `speechBytes` is what speech requests return. */
export async function startFakeOpenAiAudio(speechBytes: Buffer): Promise<FakeAudioUpstream> {
  const requests: AudioRequest[] = [];
  const abortWaiters: Array<(r: AudioRequest) => void> = [];
  const speechUsage = { input_tokens: 7, output_tokens: 42, total_tokens: 49 };
  const transcriptDeltas = ["Hello", " from", " the", " upstream."];
  const segments = [
    { start: 0, end: 1.2, text: " Hello from" },
    { start: 1.2, end: 2.5, text: " the upstream." },
  ];
  const thirds = [0, 1, 2].map((i) => speechBytes.subarray(Math.floor((i * speechBytes.length) / 3), Math.floor(((i + 1) * speechBytes.length) / 3)));

  async function speech(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    requests.push({ url: req.url ?? "", headers: req.headers, body });
    if (body.voice === "fail") return fail(res, 400, "Invalid voice 'fail'.", "voice");
    res.on("close", () => {
      if (!res.writableFinished) for (const w of abortWaiters.splice(0)) w(requests.at(-1)!);
    });
    // Voice `slow`: pieces a second apart, for disconnect tests.
    const pause = body.voice === "slow" ? 1000 : 10;
    if (body.stream_format === "sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const t of thirds) {
        res.write(`data: ${JSON.stringify({ type: "speech.audio.delta", audio: t.toString("base64") })}\n\n`);
        await sleep(pause);
      }
      res.end(`data: ${JSON.stringify({ type: "speech.audio.done", usage: speechUsage })}\n\n`);
      return;
    }
    res.writeHead(200, { "content-type": body.response_format === "mp3" ? "audio/mpeg" : "application/octet-stream" });
    for (const t of thirds) {
      if (res.destroyed) return;
      res.write(t);
      await sleep(pause);
    }
    res.end();
  }

  function transcription(req: IncomingMessage, res: ServerResponse): void {
    const fields: Record<string, string> = {};
    let file: AudioRequest["file"];
    const bb = busboy({ headers: req.headers });
    bb.on("field", (k, v) => (fields[k] = v));
    bb.on("file", (_name, stream, info) => {
      const parts: Buffer[] = [];
      stream.on("data", (c: Buffer) => parts.push(c));
      stream.on("end", () => (file = { name: info.filename ?? "", mimeType: info.mimeType, bytes: Buffer.concat(parts) }));
    });
    bb.on("close", () => {
      requests.push({ url: req.url ?? "", headers: req.headers, body: fields, ...(file ? { file } : {}) });
      void answerTranscription(res, fields);
    });
    req.pipe(bb);
  }

  async function answerTranscription(res: ServerResponse, fields: Record<string, string>): Promise<void> {
    const text = transcriptDeltas.join("");
    if (fields["language"] === "xx") return fail(res, 400, "Unsupported language 'xx'.", "language");
    if (fields["stream"] === "true") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const d of transcriptDeltas) {
        res.write(`data: ${JSON.stringify({ type: "transcript.text.delta", delta: d })}\n\n`);
        await sleep(10);
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
          language: "english",
          duration: 2.5,
          text,
          segments: segments.map((s, id) => ({ id, seek: 0, ...s, tokens: [1, 2], temperature: 0, avg_logprob: -0.2, compression_ratio: 1, no_speech_prob: 0 })),
          usage: { type: "duration", seconds: 3 },
        }),
      );
    } else res.end(JSON.stringify({ text }));
  }

  const server = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/v1/audio/speech") void speech(req, res);
    else if (req.method === "POST" && req.url === "/v1/audio/transcriptions") transcription(req, res);
    else fail(res, 404, `no route ${req.method} ${req.url}`, null);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    speechBytes,
    speechUsage,
    transcriptDeltas,
    segments,
    nextAbort: () => new Promise((r) => abortWaiters.push(r)),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
