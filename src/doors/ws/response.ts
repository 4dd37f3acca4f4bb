import { openAiErrorObject, openAiErrorType } from "../http/shapes/openai/errors.js";
/**
 * One response of a realtime session: the cascade. The text model streams
 * the reply. When the profile's speech model takes streamed text
 * (`engine.synthesizeStream`, e.g. ElevenLabs' input-streaming socket) the
 * text goes to it as it is written, over one speech stream opened when the
 * response starts; otherwise the text is cut into sentences and each
 * sentence goes to the speech model as soon as it is complete. Either way
 * the first audio is out while the text model is still writing (see
 * speech-output.ts for the choice and the encoding). Audio deltas wait for
 * the socket (`Outbox.ready`), which pauses the speech stream, which pauses
 * synthesis.
 *
 * Function calls the text model makes become `function_call` items (the
 * client runs them and sends `function_call_output` items back).
 *
 * Cancelling (barge-in, `response.cancel`, the socket closing) aborts both
 * engine streams at once — upstream requests and child processes with them
 * — and sends `response.done` with status `cancelled`; nothing of the
 * response is sent after its `response.done`.
 */
import { Finish_Reason, type Chunk } from "../../gen/spillway/v1/chunk.js";
import type { GenerateRequest, SynthesizeRequest, Tool } from "../../gen/spillway/v1/request.js";
import type { Principal, Ticket } from "../../engine/admission.js";
import { Code } from "../../engine/code.js";
import { SpillwayError, stackless } from "../../engine/errors.js";
import type { EngineStream, StreamEngine } from "../../engine/stream-engine.js";
import { AsyncQueue } from "./async-queue.js";
import type { RealtimeAudioFormat } from "./audio/formats.js";
import type { Conversation } from "./conversation.js";
import { newId, type Outbox } from "./outbox.js";
import { ResponseOutputs } from "./response-outputs.js";
import { SentenceSplitter } from "./sentence-splitter.js";
import { SpeechOutput, speechPlan, type SpeechPlan } from "./speech-output.js";
import type { StreamSummary } from "../../engine/active-stream.js";

/** Why a response was cancelled. */
export type CancelReason = "turn_detected" | "client_cancelled";

/** Everything one response is made with, fixed when it is created. */
export interface ResponsePlan {
  readonly engine: StreamEngine;
  readonly outbox: Outbox;
  readonly conversation: Conversation;
  readonly beta: boolean;
  /** Who is calling (gateway key), for admission. */
  readonly principal: Principal | undefined;
  /**
   * The slot reserved at the upgrade, for the session's first response: the
   * text stream takes it over (`CallOptions.ticket`); freed when the
   * response ends if it was not taken.
   */
  readonly ticket?: Ticket | undefined;
  readonly textModel: string;
  readonly ttsModel: string;
  readonly audio: boolean;
  readonly instructions: string;
  readonly voice: string;
  readonly speed: number;
  readonly outputFormat: RealtimeAudioFormat;
  readonly maxOutputTokens: number | "inf";
  readonly temperature: number | undefined;
  readonly metadata: Record<string, string> | null;
  /** Functions the text model may call. */
  readonly tools: Tool[];
  /** `auto`, `none`, `required`, or a function name; "" for the provider default. */
  readonly toolChoice: string;
  /** Add the reply to the conversation (`conversation: "auto"`), or not (`"none"`). */
  readonly addToConversation: boolean;
  /** Called once when the response ends (logs, metrics). */
  readonly onEnd?: ((end: ResponseEnd) => void) | undefined;
}

/** How a response ended. */
export interface ResponseEnd {
  readonly id: string;
  readonly status: "completed" | "cancelled" | "failed" | "incomplete";
  /** performance.now() when it started. */
  readonly startedAt: number;
  /** Audio bytes sent (before base64). */
  readonly audioBytes: number;
  /** Playback time of the audio sent (ms), and when its first delta went out (performance.now(); 0 for none). */
  readonly audioMs: number;
  readonly firstAudioAt: number;
  readonly error: SpillwayError | undefined;
  /** The text model's stream, once it ended (model, provider, TTFT, usage). */
  readonly textSummary: StreamSummary | undefined;
}

/** Where the text model's text goes: the speech model's input, sentence by sentence or as written. */
interface TextSink {
  push(text: string): void;
  end(): void;
  fail(e: unknown): void;
}

/** Cuts text into sentences for sentence-by-sentence speech. */
function sentenceSink(sentences: AsyncQueue<string>): TextSink {
  const splitter = new SentenceSplitter();
  return {
    push: (text) => {
      for (const s of splitter.push(text)) sentences.push(s);
    },
    end: () => {
      for (const s of splitter.flush()) sentences.push(s);
      sentences.close();
    },
    fail: (e) => sentences.fail(e),
  };
}

type Status = "completed" | "cancelled" | "failed" | "incomplete";

/** The abort reason of a response's streams, per status: built once, stackless (every response ends with one). */
const ENDED: Readonly<Record<Status, SpillwayError>> = stackless(() => ({
  completed: new SpillwayError(Code.Canceled, "the response ended (completed)"),
  cancelled: new SpillwayError(Code.Canceled, "the response ended (cancelled)"),
  failed: new SpillwayError(Code.Canceled, "the response ended (failed)"),
  incomplete: new SpillwayError(Code.Canceled, "the response ended (incomplete)"),
}));

/** A response, from `response.created` to `response.done`. */
export class RealtimeResponse {
  readonly id = newId("resp");
  /** The response's scope for its engine streams: made when it runs (one cancelled while queued never needs one). */
  private controller: AbortController | undefined;
  private readonly outputs: ResponseOutputs;
  private readonly streams = new Set<EngineStream>();
  private finished = false;
  private started = false;
  private usage = { input: 0, output: 0 };
  private incomplete = false;
  private startedAt = performance.now();
  /** The message's audio deltas (made at the first one): the fields around `delta` never change within a response. */
  private sendAudioDelta: ((delta: string) => void) | undefined;
  private audioBytes = 0;
  private audioMs = 0;
  private firstAudioAt = 0;
  private textSummary: StreamSummary | undefined;
  private error: SpillwayError | undefined;
  private readonly output: SpeechOutput;
  /** Resolves after `response.done` was sent. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly plan: ResponsePlan) {
    this.outputs = new ResponseOutputs({
      responseId: this.id,
      outbox: plan.outbox,
      conversation: plan.conversation,
      beta: plan.beta,
      audio: plan.audio,
      addToConversation: plan.addToConversation,
    });
    this.output = new SpeechOutput(plan.outputFormat);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** True once `response.done` was sent. */
  get isDone(): boolean {
    return this.finished;
  }

  /** Runs the response to its end; never throws. */
  async run(): Promise<void> {
    if (this.finished) return;
    this.started = true;
    this.startedAt = performance.now();
    const { plan } = this;
    const controller = (this.controller = new AbortController());
    plan.outbox.send({ type: "response.created", response: this.responseJson("in_progress") });
    try {
      const req: GenerateRequest = {
        model: plan.textModel,
        messages: plan.conversation.messages(plan.instructions),
        prompt: "",
        tools: plan.tools,
        toolChoice: plan.tools.length > 0 ? plan.toolChoice : "",
        stop: [],
        user: "",
        metadata: {},
        serviceTier: "",
        upstreamHeaders: {},
      };
      if (plan.maxOutputTokens !== "inf") req.maxTokens = plan.maxOutputTokens;
      if (plan.temperature !== undefined) req.temperature = plan.temperature;
      const text = await this.open(() =>
        plan.engine.generate(req, { signal: controller.signal, principal: plan.principal, ticket: plan.ticket, onStreamEnd: (s) => (this.textSummary = s) }),
      );
      if (!text) return;
      const speech = speechPlan(plan.engine, plan.ttsModel, plan.outputFormat);
      const queue = new AsyncQueue<string>();
      const sink: TextSink = speech.streamed ? { push: (t) => queue.push(t), end: () => queue.close(), fail: (e) => queue.fail(e) } : sentenceSink(queue);
      const speak = !plan.audio ? Promise.resolve() : speech.streamed ? this.pumpStreamedSpeech(queue, speech, controller.signal) : this.pumpSpeech(queue, speech, controller.signal);
      await Promise.all([this.pumpText(text, sink), speak]);
      this.complete();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Cancels the response (no-op once done). A response not started yet ends as soon as it runs. */
  cancel(reason: CancelReason): void {
    if (this.finished) return;
    if (!this.started) {
      this.started = true;
      this.plan.outbox.send({ type: "response.created", response: this.responseJson("in_progress") });
    }
    this.finish("cancelled", { type: "cancelled", reason });
  }

  /** Opens an engine stream unless the response ended meanwhile (then the stream is cancelled). */
  private async open(start: () => Promise<EngineStream>): Promise<EngineStream | undefined> {
    const s = await start();
    if (this.finished) {
      s.cancel();
      return undefined;
    }
    this.streams.add(s);
    return s;
  }

  private async pumpText(stream: EngineStream, sink: TextSink): Promise<void> {
    const { outbox } = this.plan;
    /** The message's text deltas (made with the message, on the first text): the fields around `delta` never change. */
    let sendDelta: ((delta: string) => void) | undefined;
    const it = stream[Symbol.asyncIterator]();
    /** Whether the stream ended or failed by itself (else, as `for await` did, a loop left early closes it). */
    let over = false;
    try {
      try {
        for (;;) {
          // What the engine already holds is taken without a promise per chunk (as the SSE door's pipeStream does).
          let r: IteratorResult<Chunk>;
          try {
            r = stream.tryNext?.() ?? (await it.next());
          } catch (e) {
            over = true;
            throw e;
          }
          if (r.done) {
            over = true;
            break;
          }
          if (this.finished) return;
          const p = r.value.payload;
          if (!p) continue;
          switch (p.$case) {
            case "text": {
              this.outputs.addText(p.value.text);
              sendDelta ??= outbox.deltaSender(this.plan.audio ? "response.output_audio_transcript.delta" : "response.output_text.delta", this.outputs.where());
              sendDelta(p.value.text);
              if (this.plan.audio) sink.push(p.value.text);
              break;
            }
            case "toolCall":
              this.outputs.toolCall(p.value);
              break;
            case "usage":
              this.usage = { input: p.value.inputTokens, output: p.value.outputTokens };
              break;
            case "finish":
              if (p.value.reason === Finish_Reason.REASON_LENGTH) this.incomplete = true;
              break;
            case "error":
              throw SpillwayError.fromChunkError(p.value);
            default:
              break;
          }
        }
      } finally {
        if (!over) await it.return?.();
      }
      sink.end();
    } catch (e) {
      sink.fail(e);
      throw e;
    } finally {
      this.streams.delete(stream);
    }
  }

  /** The speech request of this response for `input` ("" for streamed text). */
  private speechRequest(input: string, speech: SpeechPlan): SynthesizeRequest {
    const { plan } = this;
    return { model: plan.ttsModel, input, voice: plan.voice, encoding: speech.encoding, speed: plan.speed, sampleRate: speech.sampleRate, instructions: "" };
  }

  /** Sentence by sentence: one speech stream per sentence, in order. */
  private async pumpSpeech(sentences: AsyncQueue<string>, speech: SpeechPlan, signal: AbortSignal): Promise<void> {
    const { plan } = this;
    for await (const sentence of sentences) {
      if (this.finished) return;
      const stream = await this.open(() => plan.engine.synthesize(this.speechRequest(sentence, speech), { signal, principal: plan.principal }));
      if (!stream) return;
      if (!(await this.sendAudio(stream))) return;
    }
  }

  /** As written: one speech stream fed the text as it comes (opened now, while the text model thinks). */
  private async pumpStreamedSpeech(text: AsyncQueue<string>, speech: SpeechPlan, signal: AbortSignal): Promise<void> {
    const { plan } = this;
    const stream = await this.open(() =>
      plan.engine.synthesizeStream(this.speechRequest("", speech), text, { signal, principal: plan.principal }),
    );
    if (stream) await this.sendAudio(stream);
  }

  /** Sends a speech stream's audio as deltas, each when the socket can take it; false once the response ended. */
  private async sendAudio(stream: EngineStream): Promise<boolean> {
    const { plan } = this;
    try {
      for await (const chunk of stream) {
        if (this.finished) return false;
        const p = chunk.payload;
        if (p?.$case === "error") throw SpillwayError.fromChunkError(p.value);
        if (p?.$case !== "audio") continue;
        const bytes = this.output.encode(p.value);
        const max = this.output.maxDeltaBytes;
        for (let at = 0; at < bytes.length; at += max) {
          await plan.outbox.ready();
          if (this.finished) return false;
          const piece = bytes.subarray(at, at + max);
          const ms = this.output.durationMs(piece.length);
          this.outputs.addAudioMs(ms);
          this.audioMs += ms;
          if (this.firstAudioAt === 0) this.firstAudioAt = performance.now();
          this.audioBytes += piece.length;
          this.sendAudioDelta ??= plan.outbox.deltaSender("response.output_audio.delta", this.outputs.where());
          this.sendAudioDelta(piece.toString("base64"));
        }
      }
      return !this.finished;
    } finally {
      this.streams.delete(stream);
    }
  }

  private complete(): void {
    if (this.finished) return;
    const { outbox } = this.plan;
    const { outputs } = this;
    this.outputs.callsDone();
    // A reply with neither text nor calls still has its (empty) message.
    if (outputs.hasMessage || !outputs.json().length) {
      if (this.plan.audio) {
        outbox.send({ type: "response.output_audio.done", ...outputs.where() });
        outbox.send({ type: "response.output_audio_transcript.done", ...outputs.where(), transcript: outputs.text });
      } else {
        outbox.send({ type: "response.output_text.done", ...outputs.where(), text: outputs.text });
      }
    }
    if (this.incomplete) this.finish("incomplete", { type: "incomplete", reason: "max_output_tokens" });
    else this.finish("completed", null);
  }

  private fail(e: unknown): void {
    if (this.finished) return;
    const err = SpillwayError.from(e);
    this.error = err;
    this.plan.outbox.send({
      type: "error",
      error: { ...openAiErrorObject(err, "response_failed"), event_id: null },
    });
    this.finish("failed", { type: "failed", error: { type: openAiErrorType(err), code: err.reason ?? "response_failed" } });
  }

  /** Ends the response: aborts the engine streams, closes the items, sends `response.done`. */
  private finish(status: Status, details: Record<string, unknown> | null): void {
    if (this.finished) return;
    this.finished = true;
    this.controller?.abort(ENDED[status]);
    // A reservation no stream took (the response failed or was cancelled before its text stream) goes back.
    this.plan.ticket?.release();
    for (const s of this.streams) s.cancel();
    this.streams.clear();
    this.outputs.close(status === "completed");
    this.plan.outbox.send({ type: "response.done", response: this.responseJson(status, details) });
    this.resolveDone();
    this.plan.onEnd?.({
      id: this.id,
      status,
      startedAt: this.startedAt,
      audioBytes: this.audioBytes,
      audioMs: this.audioMs,
      firstAudioAt: this.firstAudioAt,
      error: this.error,
      textSummary: this.textSummary,
    });
  }

  private responseJson(status: Status | "in_progress", details: Record<string, unknown> | null = null): Record<string, unknown> {
    const out: Record<string, unknown> = {
      id: this.id,
      object: "realtime.response",
      status,
      output: status === "in_progress" ? [] : this.outputs.json(),
      output_modalities: this.plan.audio ? ["audio"] : ["text"],
      max_output_tokens: this.plan.maxOutputTokens,
      audio: {
        output: {
          format: this.plan.outputFormat === "audio/pcm" ? { type: "audio/pcm", rate: 24000 } : { type: this.plan.outputFormat },
          voice: this.plan.voice,
        },
      },
    };
    if (this.plan.metadata) out["metadata"] = this.plan.metadata;
    if (details) out["status_details"] = details;
    if (status !== "in_progress") {
      out["usage"] = {
        total_tokens: this.usage.input + this.usage.output,
        input_tokens: this.usage.input,
        output_tokens: this.usage.output,
        input_token_details: { cached_tokens: 0, text_tokens: this.usage.input, audio_tokens: 0 },
        output_token_details: { text_tokens: this.usage.output, audio_tokens: 0 },
      };
    }
    if (this.plan.beta) {
      out["modalities"] = this.plan.audio ? ["text", "audio"] : ["text"];
      delete out["output_modalities"];
    }
    return out;
  }
}
