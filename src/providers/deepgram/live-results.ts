/**
 * Deepgram live messages → chunk payloads. `Results` with `is_final: false`
 * is an `INTERIM` hypothesis of the current segment; `is_final: true` is the
 * segment's final text: a `DELTA` (append-only, for transcripts and the
 * realtime door's delta events) and a `FINAL` with its span in seconds.
 * `speech_final: true` (Deepgram's endpointing: the speaker paused) and
 * `UtteranceEnd` (a gap after the last final word) end the utterance as one
 * `SPEECH_STOPPED` event; `SpeechStarted` is `SPEECH_STARTED`. Positions are
 * in the stream's audio, less `offset` (a turn's start on a socket that
 * carries several turns, see live-connection.ts).
 */
import { SpeechEvent_Type, TranscriptDelta_Kind } from "../../gen/spillway/v1/chunk.js";
import type { ChunkPayload } from "../../engine/payload.js";
import { amount, isObj, obj, str, type Obj } from "../shared/json.js";

/** What the mapping remembers between messages of one stream. */
export class LiveResults {
  /** Final segments so far. */
  private finals = 0;
  /** Speech was heard since the last end of an utterance. */
  private inUtterance = false;
  /** `duration` of the `Metadata` message (seconds of audio Deepgram processed), 0 before it. */
  seconds = 0;
  /** Seconds subtracted from every position (the turn's start in the socket's audio). */
  offset = 0;
  /** Speech was heard (an interim or final with text, or `SpeechStarted`) and not yet ended by `speech_final` / `UtteranceEnd`. */
  get pending(): boolean {
    return this.inUtterance;
  }
  /** Any text was heard (interim or final). */
  heard = false;

  /** The payloads of one message (already parsed). */
  map(m: Obj): ChunkPayload[] {
    switch (m["type"]) {
      case "Results":
        return this.results(m);
      case "SpeechStarted":
        this.inUtterance = true;
        return [speech(SpeechEvent_Type.TYPE_SPEECH_STARTED, this.at(amount(m["timestamp"])))];
      case "UtteranceEnd":
        return this.endUtterance(this.at(amount(m["last_word_end"])));
      case "Metadata":
        this.seconds = amount(m["duration"]);
        return [];
      default:
        return [];
    }
  }

  private results(m: Obj): ChunkPayload[] {
    const alternatives = obj(m["channel"])["alternatives"];
    const best = Array.isArray(alternatives) && isObj(alternatives[0]) ? alternatives[0] : {};
    const text = str(best["transcript"]).trim();
    const start = this.at(amount(m["start"]));
    const end = start + amount(m["duration"]);
    if (text) this.heard = true;
    const out: ChunkPayload[] = [];
    if (m["is_final"] !== true) {
      if (text) {
        this.inUtterance = true;
        out.push(transcript(text, TranscriptDelta_Kind.KIND_INTERIM, start, end));
      }
      return out;
    }
    if (text) {
      this.inUtterance = true;
      out.push(transcript(this.finals > 0 ? ` ${text}` : text, TranscriptDelta_Kind.KIND_DELTA, 0, 0));
      out.push(transcript(text, TranscriptDelta_Kind.KIND_FINAL, start, end));
      this.finals++;
    }
    if (m["speech_final"] === true) out.push(...this.endUtterance(end));
    return out;
  }

  /** A stream position as a position in this turn. */
  private at(seconds: number): number {
    return Math.max(0, seconds - this.offset);
  }

  private endUtterance(at: number): ChunkPayload[] {
    if (!this.inUtterance) return [];
    this.inUtterance = false;
    return [speech(SpeechEvent_Type.TYPE_SPEECH_STOPPED, at)];
  }
}

function transcript(text: string, kind: TranscriptDelta_Kind, start: number, end: number): ChunkPayload {
  return { $case: "transcript", value: { text, kind, startSeconds: start, endSeconds: end } };
}

function speech(type: SpeechEvent_Type, seconds: number): ChunkPayload {
  return { $case: "speech", value: { type, audioMs: Math.round(seconds * 1000) } };
}
