/**
 * Helpers for realtime (WebSocket) tests: a client that records every server
 * event, checks each against OpenAI's `RealtimeServerEvent` schema (GA
 * sessions), and waits for events by type; speech made with the local TTS;
 * audio streamed in 20 ms frames.
 */
import { AudioEncoding } from "../../src/gen/spillway/v1/chunk.js";
import type { Gateway } from "../../src/gateway.js";
import WebSocket from "ws";
import { openApi } from "./openapi.js";

/** Session audio rate (pcm16 mono). */
export const RATE = 24_000;

/** Options of {@link RealtimeTestClient.connect}. */
export interface ConnectOptions {
  readonly headers?: Record<string, string>;
  readonly protocols?: string[];
  /** Validate every event against RealtimeServerEvent (default true; off for beta clients). */
  readonly validate?: boolean;
  /** CA certificate to trust (wss). */
  readonly ca?: string | Buffer;
}

type Event = Record<string, any>;

/** A WebSocket realtime client for tests. */
export class RealtimeTestClient {
  readonly events: Event[] = [];
  /** Schema problems found, as "type: problems". */
  readonly invalid: string[] = [];
  /** Resolves with the close code once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly ws: WebSocket,
    private readonly validate: boolean,
  ) {
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const e = JSON.parse((data as Buffer).toString("utf8")) as Event;
      this.events.push(e);
      if (this.validate && openApi) {
        const problems = openApi("RealtimeServerEvent", e);
        if (problems.length > 0) this.invalid.push(`${e["type"]}: ${problems.slice(0, 3).join("; ")} ${JSON.stringify(e).slice(0, 300)}`);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => {
      resolve({ code, reason: String(reason) });
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }));
  }

  /** Opens a socket to `url` and waits for it to be open. */
  static async connect(url: string, opts: ConnectOptions = {}): Promise<RealtimeTestClient> {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {}, ...(opts.ca ? { ca: opts.ca } : {}) });
    const client = new RealtimeTestClient(ws, opts.validate ?? true);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
    return client;
  }

  /** Sends a client event. */
  send(event: Event): void {
    this.ws.send(JSON.stringify(event));
  }

  /** Events of `type` received so far. */
  all(type: string): Event[] {
    return this.events.filter((e) => e["type"] === type);
  }

  /**
   * Waits for the first event of `type` (after index `from`) matching
   * `match`. Rejects after `timeoutMs` or when the socket closes first.
   */
  async next(type: string, match: (e: Event) => boolean = () => true, timeoutMs = 20_000, from = 0): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find((e) => e["type"] === type && match(e));
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before ${type}; got ${this.types().join(", ")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}; got ${this.types().join(", ")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The types of events received, in order. */
  types(): string[] {
    return this.events.map((e) => String(e["type"]));
  }

  /** Closes the socket and waits for it. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** The ws:// (or wss://) URL of `/v1/realtime` on a test gateway. */
export function realtimeUrl(origin: string, model = "local/realtime"): string {
  return `${origin.replace(/^http/, "ws")}/v1/realtime?model=${encodeURIComponent(model)}`;
}

/** Speech for `text` made with the gateway's local TTS (`local/tts`), as 24 kHz pcm16. */
export async function speak(gateway: Gateway, text: string, voice = "alloy"): Promise<Buffer> {
  const stream = await gateway.engine.synthesize({
    model: "local/tts",
    input: text,
    voice,
    encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
    speed: 1,
    sampleRate: RATE,
    instructions: "",
  });
  const parts: Buffer[] = [];
  for await (const c of stream) {
    if (c.payload?.$case === "audio") parts.push(Buffer.from(c.payload.value.data));
    if (c.payload?.$case === "error") throw new Error(c.payload.value.message);
  }
  return Buffer.concat(parts);
}

/** `ms` of silence as 24 kHz pcm16. */
export function silence(ms: number): Buffer {
  return Buffer.alloc(Math.round((RATE * ms) / 1000) * 2);
}

/** A sine tone as 24 kHz pcm16 (amplitude 0–1). */
export function tone(ms: number, hz = 440, amplitude = 0.3): Buffer {
  const n = Math.round((RATE * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / RATE) * amplitude * 32767), i * 2);
  return b;
}

/** A 44-byte WAV header + data (pcm16 mono). */
export function wav(pcm: Buffer, rate = RATE): Buffer {
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write("WAVEfmt ", 8, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

/** The pcm16 data of a canonical WAV file made by {@link wav}. */
export function wavData(file: Buffer): Buffer {
  const at = file.indexOf("data", 12, "ascii");
  if (at < 0) throw new Error("no data chunk");
  return file.subarray(at + 8, at + 8 + file.readUInt32LE(at + 4));
}

/** 20 ms frames of pcm16 (the last one may be shorter). */
export function frames(pcm: Buffer, ms = 20): Buffer[] {
  const size = Math.round((RATE * ms) / 1000) * 2;
  const out: Buffer[] = [];
  for (let i = 0; i < pcm.length; i += size) out.push(pcm.subarray(i, i + size));
  return out;
}

/** Streams pcm16 as `input_audio_buffer.append` events in 20 ms frames (as fast as the socket takes them). */
export function appendAudio(client: RealtimeTestClient, pcm: Buffer): void {
  for (const f of frames(pcm)) client.send({ type: "input_audio_buffer.append", audio: f.toString("base64") });
}

/** Decodes every `response.output_audio.delta` of response `responseId` (all when undefined). */
export function audioOf(client: RealtimeTestClient, responseId?: string, type = "response.output_audio.delta"): Buffer {
  return Buffer.concat(
    client.all(type).filter((e) => responseId === undefined || e["response_id"] === responseId).map((e) => Buffer.from(e["delta"], "base64")),
  );
}
