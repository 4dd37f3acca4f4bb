/**
 * Transcribing a committed user turn with the profile's speech-to-text
 * model: the turn's audio goes to `engine.transcribe`, each append-only
 * delta becomes `conversation.item.input_audio_transcription.delta`, and
 * the end `….completed` (or `….failed`, after which the turn goes on with an
 * empty transcript).
 */
import { AudioEncoding, TranscriptDelta_Kind } from "../../gen/spillway/v1/chunk.js";
import type { Principal } from "../../engine/admission.js";
import { SpillwayError } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { AsyncQueue } from "./async-queue.js";
import { toBytes } from "../../audio/pcm.js";
import { SESSION_RATE } from "./audio/formats.js";
import type { Outbox } from "./outbox.js";

/** What a transcription needs. */
export interface TranscriptionJob {
  readonly engine: StreamEngine;
  readonly outbox: Outbox;
  readonly model: string;
  readonly language: string;
  readonly prompt: string;
  readonly itemId: string;
  readonly audio: Int16Array;
  /** Aborts the transcription (the session ended). */
  readonly signal: AbortSignal;
  /** Who is calling (gateway key), for admission. */
  readonly principal: Principal | undefined;
}

const PIECE_SAMPLES = SESSION_RATE / 10;

function pieces(audio: Int16Array): AsyncIterable<Uint8Array> {
  const q = new AsyncQueue<Uint8Array>();
  for (let i = 0; i < audio.length; i += PIECE_SAMPLES) q.push(toBytes(audio.subarray(i, i + PIECE_SAMPLES)));
  q.close();
  return q;
}

/** Runs the transcription; resolves with the transcript ("" when it failed). */
export async function transcribeTurn(job: TranscriptionJob): Promise<string> {
  const { outbox, itemId } = job;
  let deltas = "";
  const finals: string[] = [];
  let seconds = job.audio.length / SESSION_RATE;
  try {
    const stream = await job.engine.transcribe(
      {
        model: job.model,
        language: job.language,
        prompt: job.prompt,
        encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
        sampleRate: SESSION_RATE,
        filename: "",
        mimeType: "",
      },
      pieces(job.audio),
      { signal: job.signal, principal: job.principal },
    );
    for await (const chunk of stream) {
      const p = chunk.payload;
      if (!p) continue;
      if (p.$case === "transcript") {
        if (p.value.kind === TranscriptDelta_Kind.KIND_DELTA) {
          deltas += p.value.text;
          outbox.send({
            type: "conversation.item.input_audio_transcription.delta",
            item_id: itemId,
            content_index: 0,
            delta: p.value.text,
          });
        } else if (p.value.kind === TranscriptDelta_Kind.KIND_FINAL) {
          finals.push(p.value.text);
        }
      } else if (p.$case === "usage") {
        if (p.value.inputAudioSeconds > 0) seconds = p.value.inputAudioSeconds;
      } else if (p.$case === "error") {
        throw SpillwayError.fromChunkError(p.value);
      }
    }
  } catch (e) {
    if (job.signal.aborted) return "";
    const err = SpillwayError.from(e);
    outbox.send({
      type: "conversation.item.input_audio_transcription.failed",
      item_id: itemId,
      content_index: 0,
      error: { type: err.type, code: err.openAiCode ?? "transcription_failed", message: err.message, param: err.param ?? null },
    });
    return "";
  }
  const transcript = (deltas || finals.join(" ")).trim();
  outbox.send({
    type: "conversation.item.input_audio_transcription.completed",
    item_id: itemId,
    content_index: 0,
    transcript,
    usage: { type: "duration", seconds: Math.round(seconds * 1000) / 1000 },
  });
  return transcript;
}
