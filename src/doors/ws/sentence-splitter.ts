/**
 * Cuts streamed text into sentences for speech synthesis, so the first
 * sentence is spoken while the text model is still writing the rest. A
 * sentence ends at `.`, `!`, `?`, `;` or `:` (and their CJK forms) followed
 * by white space, or at a line break; runs longer than `maxChars` are cut at
 * the last white space so speech never waits on a very long sentence.
 */
export class SentenceSplitter {
  private buffer = "";

  constructor(private readonly maxChars = 200) {}

  /** Adds text; returns the sentences it completed (trimmed, non-empty). */
  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    for (;;) {
      const m = /[.!?;:。！？](?=\s)|\n/.exec(this.buffer);
      let cut = m ? m.index + m[0].length : -1;
      if (cut < 0 && this.buffer.length > this.maxChars) {
        const space = this.buffer.lastIndexOf(" ", this.maxChars);
        cut = space > 0 ? space : this.maxChars;
      }
      if (cut < 0) break;
      const sentence = this.buffer.slice(0, cut).trim();
      this.buffer = this.buffer.slice(cut);
      if (sentence) out.push(sentence);
    }
    return out;
  }

  /** Returns what is left (the last sentence without its end) and empties the splitter. */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = "";
    return rest ? [rest] : [];
  }
}
