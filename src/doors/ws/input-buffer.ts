/**
 * The input audio buffer of a realtime session: the audio the client
 * appended and has not committed yet, kept as it came on the wire (pcm16 at
 * 24 kHz, or G.711 at 8 kHz, so telephony audio can reach a recognizer that
 * takes G.711 byte for byte), with its position in the session's audio
 * timeline, so VAD positions (ms since the session's first audio) map to
 * samples.
 */
export class InputAudioBuffer {
  private chunks: Uint8Array[] = [];
  /** Buffered samples. */
  private samples = 0;
  /** Samples appended since `baseMs` (the last change of format). */
  private total = 0;
  /** Session position (ms) where `total` counts from. */
  private baseMs = 0;

  /**
   * @param sampleRate - samples per second of the wire format
   * @param bytesPerSample - 2 for pcm16, 1 for G.711
   */
  constructor(
    private rate: number,
    private bytesPerSample = 2,
  ) {}

  /** Samples per second of the buffered audio. */
  get sampleRate(): number {
    return this.rate;
  }

  /** Length of the buffered audio (ms). */
  get durationMs(): number {
    return (this.samples * 1000) / this.rate;
  }

  /** Audio appended over the whole session (ms). */
  get positionMs(): number {
    return this.baseMs + Math.floor((this.total * 1000) / this.rate);
  }

  /** Buffered samples. */
  get length(): number {
    return this.samples;
  }

  /** Adds audio (whole samples of the wire format) at the end; the buffer keeps `bytes` (no copy). */
  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const n = bytes.length / this.bytesPerSample;
    this.chunks.push(bytes);
    this.samples += n;
    this.total += n;
  }

  /** Drops audio before `ms` of the session timeline (keeps everything after it). */
  dropBefore(ms: number): void {
    const startSample = this.total - this.samples;
    const cut = Math.min(this.samples, Math.max(0, Math.floor(((ms - this.baseMs) * this.rate) / 1000) - startSample));
    if (cut > 0) this.dropSamples(cut);
  }

  /** Keeps only the last `ms` of audio. */
  keepLast(ms: number): void {
    const keep = Math.floor((ms * this.rate) / 1000);
    if (this.samples > keep) this.dropSamples(this.samples - keep);
  }

  /** A copy of all buffered audio as one piece. */
  peek(): Buffer {
    return Buffer.concat(this.chunks, this.samples * this.bytesPerSample);
  }

  /** Returns all buffered audio as one piece and empties the buffer. */
  take(): Buffer {
    const out = this.peek();
    this.clear();
    return out;
  }

  /** Empties the buffer. */
  clear(): void {
    this.chunks = [];
    this.samples = 0;
  }

  /**
   * The wire format changed: the buffered audio becomes `convert(buffered)`
   * in the new format, and the timeline goes on where it was.
   */
  reformat(rate: number, bytesPerSample: number, convert: (bytes: Buffer) => Uint8Array): void {
    const end = this.positionMs;
    const converted = this.samples > 0 ? convert(this.peek()) : new Uint8Array(0);
    this.rate = rate;
    this.bytesPerSample = bytesPerSample;
    this.clear();
    this.total = 0;
    this.baseMs = end;
    if (converted.length === 0) return;
    const n = converted.length / bytesPerSample;
    // The converted audio ends where the old audio ended.
    this.baseMs = end - Math.floor((n * 1000) / rate);
    this.append(converted);
  }

  private dropSamples(n: number): void {
    this.samples -= n;
    let bytes = n * this.bytesPerSample;
    while (bytes > 0) {
      const first = this.chunks[0]!;
      if (first.length <= bytes) {
        this.chunks.shift();
        bytes -= first.length;
      } else {
        this.chunks[0] = first.subarray(bytes);
        bytes = 0;
      }
    }
  }
}
