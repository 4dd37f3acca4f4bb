/**
 * `turn_detection.idle_timeout_ms` (GA server VAD): when the user says
 * nothing for that long after the last response has finished playing, the
 * server commits the (silent) input as a turn and answers, so a phone-style
 * agent can prompt the user. The playback end is estimated from the audio
 * sent: first audio delta + its duration.
 */
export class IdleTimeout {
  private timer: NodeJS.Timeout | undefined;
  private armedAt = 0;

  /**
   * @param position - the session's input audio position (ms), for the event's offsets
   * @param fire - called with the silent segment's offsets when the timeout is reached
   */
  constructor(
    private readonly position: () => number,
    private readonly fire: (audioStartMs: number, audioEndMs: number) => void,
  ) {}

  /** Starts waiting `idleMs` after the remaining playback `playbackMs` (replaces a running wait). */
  arm(idleMs: number, playbackMs: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.armedAt = this.position();
      this.timer = setTimeout(() => {
        this.timer = undefined;
        const end = this.position();
        this.fire(Math.min(this.armedAt, end), end);
      }, idleMs);
      this.timer.unref();
    }, Math.max(0, playbackMs));
    this.timer.unref();
  }

  /** Stops waiting (speech started, a response started, the session ended). */
  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
