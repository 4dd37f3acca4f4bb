import { TranscriptDelta_Kind, type TranscriptDelta, type Usage } from "../../../../gen/spillway/v1/chunk.js";

/** A segment of a transcript with its span in the audio (seconds). */
export interface TranscriptSegment {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Builds a transcript from an engine's transcript chunks. Engines either
 * stream `DELTA`s (append-only text) and mark segments with `FINAL`s, or
 * send `FINAL`s only (one per segment); `INTERIM` hypotheses are for live
 * captions and are ignored here. {@link push} returns the text to append.
 */
export class TranscriptBuilder {
  text = "";
  readonly segments: TranscriptSegment[] = [];
  private sawDelta = false;

  /** Takes one chunk; returns the text it appends ('' for none). */
  push(t: TranscriptDelta): string {
    if (t.kind === TranscriptDelta_Kind.KIND_DELTA) {
      this.sawDelta = true;
      this.text += t.text;
      return t.text;
    }
    if (t.kind !== TranscriptDelta_Kind.KIND_FINAL) return "";
    this.segments.push({ text: t.text.trim(), start: t.startSeconds, end: t.endSeconds });
    if (this.sawDelta || !t.text) return "";
    const piece = this.text && !/\s$/.test(this.text) && !/^\s/.test(t.text) ? ` ${t.text}` : t.text;
    this.text += piece;
    return piece;
  }
}

/** `transcript.text.done`'s usage (OpenAI's token usage object). */
export function transcriptTokenUsage(u: Usage): Record<string, unknown> {
  return {
    type: "tokens",
    input_tokens: u.inputTokens,
    input_token_details: { text_tokens: u.inputTokens, audio_tokens: 0 },
    output_tokens: u.outputTokens,
    total_tokens: u.totalTokens,
  };
}

/** The usage of a non-streamed transcription: the audio's duration when known, else tokens. */
export function transcriptUsage(u: Usage): Record<string, unknown> {
  return u.inputAudioSeconds > 0 ? { type: "duration", seconds: Math.ceil(u.inputAudioSeconds) } : transcriptTokenUsage(u);
}

/** Formats seconds as an SRT (`,`) or WebVTT (`.`) timestamp. */
function stamp(seconds: number, sep: "," | "."): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}

/** The transcript as SubRip subtitles, one cue per segment. */
export function toSrt(segments: readonly TranscriptSegment[]): string {
  return segments.map((s, i) => `${i + 1}\n${stamp(s.start, ",")} --> ${stamp(s.end, ",")}\n${s.text}\n`).join("\n");
}

/** The transcript as WebVTT subtitles, one cue per segment. */
export function toVtt(segments: readonly TranscriptSegment[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${stamp(s.start, ".")} --> ${stamp(s.end, ".")}\n${s.text}\n`).join("\n")}`;
}
