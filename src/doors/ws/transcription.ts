import { openAiErrorObject } from "../http/shapes/openai/errors.js";
/**
 * Transcribing a user turn with the profile's speech-to-text model. With
 * server VAD the transcription starts when speech starts and is fed as the
 * audio arrives, so when speech stops the engine has already heard almost
 * all of it: the transcript (and the response) follow quickly. Events are
 * held until the turn is committed (the item exists for the client), then
 * each append-only delta becomes
 * `conversation.item.input_audio_transcription.delta`, and the end
 * `….completed` — or `….failed`, after which the turn goes on with an empty
 * transcript.
 */
import { AudioEncoding, TranscriptDelta_Kind, type SpeechEvent } from "../../gen/spillway/v1/chunk.js";
import type { Principal } from "../../engine/admission.js";
import type { ProviderSession } from "../../engine/provider-session.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { EngineStream, StreamEngine } from "../../engine/stream-engine.js";
import { toBytes } from "../../audio/pcm.js";
import { wavHeader } from "../../audio/wav.js";
import { createLinkedAbortController } from "../../engine/signals.js";
import { AsyncQueue } from "./async-queue.js";
import { convertWire, decodeWire, formatBytesPerSample, formatRate, type RealtimeAudioFormat } from "./audio/formats.js";
import type { Outbox, ServerEvent } from "./outbox.js";

/** What a transcription is made with. */
export interface TranscriptionOptions {
  readonly engine: StreamEngine;
  readonly outbox: Outbox;
  readonly model: string;
  readonly language: string;
  readonly prompt: string;
  /** Format of the pushed audio (the session's input format). Default `audio/pcm` (24 kHz). */
  readonly format?: RealtimeAudioFormat | undefined;
  /** The user item the transcript belongs to. */
  readonly itemId: string;
  /** Aborts the transcription (the session ended). */
  readonly signal: AbortSignal;
  /** Who is calling (gateway key), for admission. */
  readonly principal: Principal | undefined;
  /**
   * Sees the recognizer's own speech events as they come (not held): Deepgram
   * sends `SPEECH_STARTED`, and `SPEECH_STOPPED` when its endpointing or
   * utterance end says the speaker stopped, positions in ms of this turn's
   * audio. A session may end the turn on them (docs/ARCHITECTURE.md). Optional.
   */
  readonly onSpeech?: ((e: SpeechEvent) => void) | undefined;
  /** The realtime session's upstream resources: a provider may carry every turn of the session over one socket (Deepgram). Optional. */
  readonly session?: ProviderSession | undefined;
}

const RAW: Readonly<Record<RealtimeAudioFormat, AudioEncoding>> = {
  "audio/pcm": AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
  "audio/pcmu": AudioEncoding.AUDIO_ENCODING_PCMU,
  "audio/pcma": AudioEncoding.AUDIO_ENCODING_PCMA,
};

/**
 * How a turn's audio goes to the speech-to-text model: as it came (pcm16,
 * or G.711 byte for byte) when the model's provider takes that encoding as
 * a live stream (`nativeTranscribeEncodings`: Deepgram), else as a streamed
 * WAV of 16-bit PCM at the format's own rate (G.711 decoded, not resampled).
 */
export interface TranscriptionInput {
  readonly encoding: AudioEncoding;
  readonly sampleRate: number;
}

/** The input plan for `model` hearing `format`; a model that does not resolve gets the WAV plan (its call fails later, as an event). */
export function transcriptionInput(engine: StreamEngine, model: string, format: RealtimeAudioFormat): TranscriptionInput {
  let native: readonly AudioEncoding[] = [];
  try {
    native = engine.router.resolve(model).provider.nativeTranscribeEncodings ?? [];
  } catch {
    // Unknown model: the engine reports it when the transcription starts.
  }
  const raw = RAW[format];
  return { encoding: native.includes(raw) ? raw : AudioEncoding.AUDIO_ENCODING_WAV, sampleRate: formatRate(format) };
}

/** One turn's transcription, running while its audio arrives. */
export class TurnTranscription {
  private readonly audio = new AsyncQueue<Uint8Array>();
  private readonly controller: ReturnType<typeof createLinkedAbortController>;
  private held: ServerEvent[] | undefined = [];
  /** Bytes pushed, in the session's input format. */
  private bytes = 0;
  private stream: EngineStream | undefined;
  private readonly format: RealtimeAudioFormat;
  private readonly input: TranscriptionInput;
  /** The transcript ("" when the transcription failed or was cancelled). */
  readonly result: Promise<string>;

  constructor(private readonly opts: TranscriptionOptions) {
    this.controller = createLinkedAbortController(opts.signal);
    this.format = opts.format ?? "audio/pcm";
    this.input = transcriptionInput(opts.engine, opts.model, this.format);
    // A streamed WAV (size unknown): every engine reads it, and upstream APIs
    // that take a file upload need a recognizable format, which raw PCM is not.
    if (this.input.encoding === AudioEncoding.AUDIO_ENCODING_WAV) this.audio.push(wavHeader(this.input.sampleRate));
    this.result = this.run();
  }

  /**
   * Feeds audio (whole samples) in the transcription's format, or in `format`
   * when the session's input format changed since it started (converted).
   */
  push(bytes: Uint8Array, format: RealtimeAudioFormat = this.format): void {
    if (format !== this.format) bytes = convertWire(format, this.format, bytes);
    if (bytes.length === 0) return;
    this.bytes += bytes.length;
    const wavOfG711 = this.input.encoding === AudioEncoding.AUDIO_ENCODING_WAV && this.format !== "audio/pcm";
    this.audio.push(wavOfG711 ? toBytes(decodeWire(this.format, bytes)) : bytes);
  }

  /** No more audio: the engine finishes the transcript. */
  end(): void {
    this.audio.close();
  }

  /** The turn is committed: send the events held so far, and the rest as they come. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const e of held) this.opts.outbox.send(e);
  }

  /** Stops the transcription; it sends nothing more. */
  cancel(): void {
    this.held = [];
    this.audio.close();
    this.controller.abort(new SpillwayError(Code.Canceled, "the turn was cleared"));
    this.stream?.cancel();
  }

  private emit(e: ServerEvent): void {
    if (this.controller.signal.aborted) return;
    if (this.held) this.held.push(e);
    else this.opts.outbox.send(e);
  }

  private async run(): Promise<string> {
    const { opts } = this;
    let deltas = "";
    const finals: string[] = [];
    let seconds = 0;
    try {
      const stream = await opts.engine.transcribe(
        {
          model: opts.model,
          language: opts.language,
          prompt: opts.prompt,
          encoding: this.input.encoding,
          sampleRate: this.input.sampleRate,
          ...(this.input.encoding === AudioEncoding.AUDIO_ENCODING_WAV ? { filename: "speech.wav", mimeType: "audio/wav" } : { filename: "", mimeType: "" }),
          live: true,
        },
        this.audio,
        { signal: this.controller.signal, principal: opts.principal, session: opts.session },
      );
      this.stream = stream;
      for await (const chunk of stream) {
        const p = chunk.payload;
        if (!p) continue;
        if (p.$case === "transcript") {
          if (p.value.kind === TranscriptDelta_Kind.KIND_DELTA) {
            deltas += p.value.text;
            this.emit({
              type: "conversation.item.input_audio_transcription.delta",
              item_id: opts.itemId,
              content_index: 0,
              delta: p.value.text,
            });
          } else if (p.value.kind === TranscriptDelta_Kind.KIND_FINAL) {
            finals.push(p.value.text);
          }
        } else if (p.$case === "speech") {
          if (!this.controller.signal.aborted) opts.onSpeech?.(p.value);
        } else if (p.$case === "usage") {
          seconds = p.value.inputAudioSeconds;
        } else if (p.$case === "error") {
          throw SpillwayError.fromChunkError(p.value);
        }
      }
    } catch (e) {
      this.audio.close();
      if (this.controller.signal.aborted) return "";
      const err = SpillwayError.from(e);
      this.emit({
        type: "conversation.item.input_audio_transcription.failed",
        item_id: opts.itemId,
        content_index: 0,
        error: openAiErrorObject(err, "transcription_failed"),
      });
      return "";
    } finally {
      this.controller.cleanup();
    }
    const transcript = (deltas || finals.join(" ")).trim();
    this.emit({
      type: "conversation.item.input_audio_transcription.completed",
      item_id: opts.itemId,
      content_index: 0,
      transcript,
      usage: { type: "duration", seconds: Math.round((seconds || this.bytes / formatBytesPerSample(this.format) / formatRate(this.format)) * 1000) / 1000 },
    });
    return transcript;
  }
}
