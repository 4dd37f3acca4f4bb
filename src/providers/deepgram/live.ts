/**
 * Live recognition over Deepgram's WebSocket (`/v1/listen`): the audio goes
 * up as binary frames as it arrives, joined into frames of about `chunkMs`
 * (100 ms by default: one socket write per 100 ms instead of one per 20 ms
 * piece of a realtime client; the end of the input is sent at once),
 * results come back as it is heard. A
 * `KeepAlive` goes up whenever no audio came for `keepAliveMs` (a caller
 * that pauses, a gRPC client that stops sending for a while), so Deepgram
 * does not close the stream (it does after 10 s, NET-0001). At the end of
 * the input `Finalize` flushes what Deepgram still holds and `CloseStream`
 * asks for the last results and `Metadata`; the stream ends with that
 * `Metadata` (Deepgram's last message; the gateway closes the socket rather
 * than wait for Deepgram's close, a round trip later), or when Deepgram
 * closes with 1000. Any other close, a close before `CloseStream`, or an
 * `Error` message fails the stream; aborting the call closes the socket.
 */
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { SpillwayError } from "../../engine/errors.js";
import { joinPieces } from "../../audio/pcm.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { tryNext } from "../../engine/poll.js";
import { jsonMessages, socketClosedError, type UpstreamSocket } from "../shared/upstream-socket.js";
import { deepgramMalformed, deepgramSocketError } from "./errors.js";
import { openLiveAudio, type LiveAudio } from "./live-audio.js";
import { LiveResults } from "./live-results.js";
import type { DeepgramUpstream } from "./upstream.js";

/** Upstream bytes not yet sent above which the audio pump waits. */
const SEND_HIGH_WATER = 1024 * 1024;

/** The `/v1/listen` URL of a live stream: model, audio format and the provider's recognition settings. */
export function liveUrl(up: DeepgramUpstream, model: string, config: TranscribeConfig, audio: LiveAudio): string {
  const s = up.settings;
  const q = new URLSearchParams({ model, ...audio.params });
  const language = config.language || s.language;
  if (language) q.set("language", language);
  q.set("interim_results", String(s.interimResults));
  q.set("endpointing", s.endpointingMs === false ? "false" : String(s.endpointingMs));
  if (s.utteranceEndMs > 0 && s.interimResults) q.set("utterance_end_ms", String(s.utteranceEndMs));
  q.set("vad_events", "true");
  q.set("smart_format", String(s.smartFormat));
  q.set("punctuate", String(s.punctuate));
  return `${up.wsBase}/v1/listen?${q.toString()}`;
}

/** Streams a live transcript of `audio` (PCM, WAV or G.711; see live-audio.ts). */
export async function* deepgramLive(
  up: DeepgramUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  const source = audio[Symbol.asyncIterator]();
  const format = await openLiveAudio(config, source);
  const socket = await up.connect(ctx, liveUrl(up, model, config, format));
  const pump = new AudioPump(socket, format, source, ctx, up.settings.keepAliveMs, up.settings.chunkMs);
  const results = new LiveResults();
  /** Metadata came after CloseStream: Deepgram's last message, so the stream is complete without waiting for its close. */
  let complete = false;
  try {
    for await (const j of jsonMessages(socket, deepgramMalformed(up.name, "a message that is not JSON"))) {
      if (j["type"] === "Error") throw deepgramSocketError(up.name, j);
      yield* results.map(j);
      if (j["type"] === "Metadata" && pump.closeSent) {
        complete = true;
        break;
      }
    }
    if (pump.error) throw pump.error;
    if (!complete && (!pump.closeSent || socket.closed?.code !== 1000)) throw socketClosedError(up.name, socket.closed, "live transcription");
    yield usagePayload({ inputAudioSeconds: results.seconds || (format.bytesPerSecond ? pump.bytes / format.bytesPerSecond : 0) });
    yield finishPayload(FinishReason.REASON_STOP);
  } finally {
    pump.stop();
    socket.close();
  }
}

/** Sends the source's audio up as it arrives, with KeepAlive in pauses and Finalize + CloseStream at its end. */
class AudioPump {
  /** Why the audio could not be sent (a bad WAV, the source failing). */
  error: SpillwayError | undefined;
  /** Whether the end of the input was sent. */
  closeSent = false;
  /** Audio bytes sent. */
  bytes = 0;
  /** KeepAlive messages sent. */
  keepAlives = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Audio not sent yet (joined into one frame of about `chunkMs`). */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly chunkBytes: number;

  constructor(
    private readonly socket: UpstreamSocket,
    private readonly format: LiveAudio,
    private readonly source: AsyncIterator<Uint8Array>,
    private readonly ctx: ProviderContext,
    private readonly keepAliveMs: number,
    private readonly chunkMs: number,
  ) {
    this.chunkBytes = Math.floor((format.bytesPerSecond * chunkMs) / 1000);
    void this.run().catch((e: unknown) => {
      this.error = SpillwayError.from(e);
      socket.close(1000, "input failed");
    });
  }

  /** Stops sending (the stream ended or was cancelled); the source is closed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.flushTimer);
    this.pending = [];
    void this.source.return?.()?.catch(() => undefined);
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (this.stopped || !this.socket.send('{"type":"KeepAlive"}')) return;
      this.keepAlives++;
      this.arm();
    }, this.keepAliveMs);
    this.timer.unref();
  }

  /** Queues audio; a frame goes when `chunkMs` of it is there, or `chunkMs` after its first piece. */
  private send(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= this.chunkBytes) {
      this.flush();
    } else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), this.chunkMs);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingBytes === 0 || this.stopped || !this.socket.isOpen) return;
    const frame = joinPieces(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.send(frame);
    this.bytes += frame.length;
    this.ctx.alive?.();
    this.arm();
  }

  private async run(): Promise<void> {
    for (const b of this.format.first) this.send(b);
    this.arm();
    for (;;) {
      // What the source holds ready is taken without a promise (tryNext); only an empty source is awaited.
      const r = tryNext(this.source) ?? (await this.source.next());
      if (this.stopped || !this.socket.isOpen) return;
      if (r.done) break;
      this.send(this.format.convert(r.value));
      while (this.socket.bufferedAmount > SEND_HIGH_WATER && this.socket.isOpen && !this.stopped) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    clearTimeout(this.timer);
    // An input that ended because its call was cancelled (gRPC ends the request stream first) is not a finished input.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.stopped || this.ctx.signal.aborted) return;
    this.flush();
    this.socket.send('{"type":"Finalize"}');
    this.closeSent = this.socket.send('{"type":"CloseStream"}');
  }
}
