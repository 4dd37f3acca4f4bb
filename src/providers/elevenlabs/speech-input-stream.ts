/**
 * Speech for text that is still being written, over ElevenLabs' input
 * streaming WebSocket (`/v1/text-to-speech/{voice_id}/stream-input`). The
 * socket is opened when the stream starts — while the text model is still
 * thinking, so the handshake costs nothing later. The first message carries
 * the voice settings and the key (`xi_api_key`); each piece of text follows
 * as it arrives with `try_trigger_generation`, and a piece that ends a
 * sentence also with `flush`, so speech starts at the first sentence end
 * without waiting for ElevenLabs' buffer to fill; `{"text": ""}` ends the
 * input. The audio comes back base64 in `{"audio": …}` messages, then
 * `{"isFinal": true}`. Text that ends without any is no speech: the socket
 * is closed and the stream ends empty. An error message, or a close before
 * `isFinal`, fails the stream; aborting the call closes the socket (ElevenLabs stops
 * generating).
 */
import type { SynthesizeRequest } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { jsonMessages, socketClosedError, type UpstreamSocket } from "../shared/upstream-socket.js";
import { elevenLabsSocketError } from "./errors.js";
import { AudioChunker, outputFormatOf } from "./formats.js";
import { voiceSettingsOf } from "./speech-http.js";
import type { ElevenLabsUpstream } from "./upstream.js";

/** A piece of text that ends a sentence (flushed so its audio starts now). */
const SENTENCE_END = /[.!?;:。！？]["')\]]*\s*$/;

/** The stream-input URL of a request. */
export function streamInputUrl(up: ElevenLabsUpstream, model: string, req: SynthesizeRequest): string {
  const voice = up.voiceId(req.voice);
  const q = new URLSearchParams({ model_id: model, output_format: outputFormatOf(req).name });
  return `${up.wsBase}/v1/text-to-speech/${encodeURIComponent(voice)}/stream-input?${q.toString()}`;
}

/** Streams speech for `text` as it arrives (`req.input` is spoken first when set). */
export async function* elevenLabsSpeechFromText(
  up: ElevenLabsUpstream,
  model: string,
  req: SynthesizeRequest,
  text: AsyncIterable<string>,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  const url = streamInputUrl(up, model, req);
  const { socket, key } = await up.connect(ctx, url);
  const init: Record<string, unknown> = { text: " ", voice_settings: voiceSettingsOf(up, req) };
  if (key) init["xi_api_key"] = key.key;
  if (up.chunkLengthSchedule) init["generation_config"] = { chunk_length_schedule: up.chunkLengthSchedule };
  socket.send(JSON.stringify(init));
  const pump = new TextPump(socket, req.input, text, ctx);
  const chunker = new AudioChunker(outputFormatOf(req));
  let final = false;
  try {
    const notJson = new SpillwayError(Code.DataLoss, `${up.name}: upstream sent a message that is not JSON`, { httpStatus: 502, reason: "upstream_error", fromUpstream: true });
    for await (const j of jsonMessages(socket, notJson)) {
      if (j["error"] !== undefined && j["error"] !== null) throw elevenLabsSocketError(up.name, j);
      if (typeof j["audio"] === "string" && j["audio"]) {
        const p = chunker.chunk(Buffer.from(j["audio"], "base64"));
        if (p) yield p;
      }
      if (j["isFinal"] === true) {
        final = true;
        break;
      }
    }
    if (pump.error) throw pump.error;
    if (!final && !pump.empty) throw socketClosedError(up.name, socket.closed, "speech stream");
    yield usagePayload({ inputTokens: 0, outputAudioSeconds: chunker.seconds });
    yield finishPayload(FinishReason.REASON_STOP);
  } finally {
    pump.stop();
    socket.close();
  }
}

/** Sends the text up as it arrives; `{"text": ""}` at its end. */
class TextPump {
  /** Why the text could not be sent (its source failed). */
  error: SpillwayError | undefined;
  /** The text ended without any: there is nothing to speak, and the socket was closed. */
  empty = false;
  private sent = false;
  private stopped = false;
  private readonly source: AsyncIterator<string>;

  constructor(
    private readonly socket: UpstreamSocket,
    first: string,
    text: AsyncIterable<string>,
    private readonly ctx: ProviderContext,
  ) {
    this.source = text[Symbol.asyncIterator]();
    void this.run(first).catch((e: unknown) => {
      this.error = SpillwayError.from(e);
      socket.close(1000, "input failed");
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    void this.source.return?.()?.catch(() => undefined);
  }

  private sendText(piece: string): void {
    if (!piece) return;
    this.sent = true;
    // Text taken counts as life for the first-chunk and idle timeouts (the audio follows it).
    this.ctx.alive?.();
    const m: Record<string, unknown> = { text: piece, try_trigger_generation: true };
    if (SENTENCE_END.test(piece)) m["flush"] = true;
    this.socket.send(JSON.stringify(m));
  }

  private async run(first: string): Promise<void> {
    this.sendText(first);
    for (;;) {
      const r = await this.source.next();
      if (this.stopped || !this.socket.isOpen) return;
      if (r.done) break;
      this.sendText(r.value);
    }
    if (!this.sent) {
      this.empty = true;
      this.socket.close(1000, "no text");
      return;
    }
    this.socket.send('{"text":""}');
  }
}
