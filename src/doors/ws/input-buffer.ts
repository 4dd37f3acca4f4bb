/**
 * The input audio buffer of a realtime session: session PCM (24 kHz) that
 * the client appended and has not committed yet, with its position in the
 * session's audio timeline, so VAD positions (ms since the session's first
 * audio) map to samples.
 */
export class InputAudioBuffer {
  private chunks: Int16Array[] = [];
  private samples = 0;
  /** Samples appended over the whole session. */
  private total = 0;

  constructor(readonly sampleRate: number) {}

  /** Length of the buffered audio (ms). */
  get durationMs(): number {
    return (this.samples * 1000) / this.sampleRate;
  }

  /** Audio appended over the whole session (ms). */
  get positionMs(): number {
    return Math.floor((this.total * 1000) / this.sampleRate);
  }

  /** Buffered samples. */
  get length(): number {
    return this.samples;
  }

  /** Adds audio at the end. */
  append(s: Int16Array): void {
    if (s.length === 0) return;
    this.chunks.push(s);
    this.samples += s.length;
    this.total += s.length;
  }

  /** Drops audio before `ms` of the session timeline (keeps everything after it). */
  dropBefore(ms: number): void {
    const startSample = this.total - this.samples;
    const cut = Math.min(this.samples, Math.max(0, Math.floor((ms * this.sampleRate) / 1000) - startSample));
    if (cut > 0) this.dropSamples(cut);
  }

  /** Keeps only the last `ms` of audio. */
  keepLast(ms: number): void {
    const keep = Math.floor((ms * this.sampleRate) / 1000);
    if (this.samples > keep) this.dropSamples(this.samples - keep);
  }

  /** A copy of all buffered audio as one array. */
  peek(): Int16Array {
    const out = new Int16Array(this.samples);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** Returns all buffered audio as one array and empties the buffer. */
  take(): Int16Array {
    const out = this.peek();
    this.clear();
    return out;
  }

  /** Empties the buffer. */
  clear(): void {
    this.chunks = [];
    this.samples = 0;
  }

  private dropSamples(n: number): void {
    this.samples -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.length <= n) {
        this.chunks.shift();
        n -= first.length;
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}
