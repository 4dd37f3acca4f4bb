/** One recognized word with its times in the input audio (seconds). */
export interface RecognizedWord {
  readonly word: string;
  readonly start: number;
  readonly end: number;
}

/** One utterance pocketsphinx finished recognizing. */
export interface Utterance {
  /** The hypothesis line, as printed. */
  readonly text: string;
  /** The words with times (fillers and silences left out), when `-time yes` printed them. */
  readonly words: RecognizedWord[];
  /** Span of the utterance in the input (seconds; 0 when unknown). */
  readonly start: number;
  readonly end: number;
}

const WORD_LINE = /^(\S+) (\d+\.\d+) (\d+\.\d+) (-?\d+(?:\.\d+)?)$/;
const FILLER = /^(<s>|<\/s>|<sil>|\[.*\]|\+\+.*\+\+)$/;

/**
 * Parses what `pocketsphinx_continuous -time yes` prints as it goes: per
 * utterance, a hypothesis line, then one `word start end confidence` line
 * per word, ending with `</s>`. Feed stdout text in any pieces; each
 * completed utterance is returned once.
 */
export class UtteranceParser {
  private partial = "";
  private text: string | undefined;
  private words: RecognizedWord[] = [];
  private start = 0;
  private end = 0;

  /** Feeds output text; returns the utterances it completes. */
  push(text: string): Utterance[] {
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop() ?? "";
    const out: Utterance[] = [];
    for (const raw of lines) this.line(raw.trimEnd(), out);
    return out;
  }

  /** Ends the output; returns an utterance left open, if any. */
  finish(): Utterance[] {
    const out: Utterance[] = [];
    if (this.partial) this.line(this.partial.trimEnd(), out);
    this.partial = "";
    this.flush(out);
    return out;
  }

  private line(line: string, out: Utterance[]): void {
    if (!line) return;
    const m = WORD_LINE.exec(line);
    if (!m) {
      this.flush(out);
      this.text = line;
      return;
    }
    const [, token, s, e] = m;
    const start = Number(s);
    const end = Number(e);
    if (token === "<s>") this.start = start;
    if (token === "</s>") {
      this.end = end;
      this.text ??= "";
      this.flush(out);
      return;
    }
    if (!FILLER.test(token!)) this.words.push({ word: token!.replace(/\(\d+\)$/, ""), start, end });
  }

  private flush(out: Utterance[]): void {
    if (this.text !== undefined || this.words.length > 0) {
      const words = this.words;
      const text = words.length > 0 ? words.map((w) => w.word).join(" ") : (this.text ?? "").trim();
      if (text) {
        out.push({
          text,
          words,
          start: words[0]?.start ?? this.start,
          end: words[words.length - 1]?.end ?? this.end,
        });
      }
    }
    this.text = undefined;
    this.words = [];
    this.start = 0;
    this.end = 0;
  }
}
