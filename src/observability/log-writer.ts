import { write, writeSync } from "node:fs";

/** Bytes of log text gathered before a write is started. */
const BATCH_BYTES = 64 * 1024;
/** Longest a line waits before it is written (ms). */
const FLUSH_MS = 100;
/** Most text held while writes are slower than logging (the log's reader stalls); older batches are dropped past it. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

/**
 * A pino destination that gathers lines and writes them to a file
 * descriptor in large batches, one asynchronous write at a time: a request
 * line costs an array push, and the threadpool hand-off of `fs.write` is
 * paid once per 64 KiB rather than once per 8 KiB with sonic-boom (whose
 * per-line `Buffer.byteLength` of its growing buffer and hand-offs were
 * most of the line's cost in the profile). Lines wait at most 100 ms; what
 * is held when the process exits is written synchronously. Memory is
 * bounded: while the reader stalls, more than 16 MiB held drops the oldest
 * batches (and says how much in the next batch written).
 *
 * One writer per descriptor ({@link logWriter}), so batches of several
 * loggers never interleave mid-line.
 */
export class LogWriter {
  private parts: string[] = [];
  private size = 0;
  /** Batches waiting for the write in progress. */
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private dropped = 0;

  constructor(private readonly fd: number) {
    setInterval(() => this.flush(), FLUSH_MS).unref();
    process.once("exit", () => this.flushSync());
  }

  /** Takes one line (pino calls this with each serialized line). */
  write(line: string): boolean {
    this.parts.push(line);
    this.size += line.length;
    if (this.size >= BATCH_BYTES) this.flush();
    return true;
  }

  /** Starts writing what is gathered (if no write is in progress, else queues it behind). */
  flush(): void {
    const batch = this.take();
    if (batch) {
      this.queue.push(batch);
      this.queued += batch.length;
      // The batch being written (the first, while writing) stays; the oldest after it go.
      const keep = this.writing ? 1 : 0;
      while (this.queued > MAX_HELD_BYTES && this.queue.length > keep + 1) {
        const old = this.queue.splice(keep, 1)[0]!;
        this.queued -= old.length;
        this.dropped += old.length;
      }
    }
    this.pump();
  }

  /** Writes everything held now, blocking (process exit). */
  flushSync(): void {
    const batch = this.take();
    if (batch) this.queue.push(batch);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const b of this.queue.splice(0)) {
      let off = 0;
      // A non-blocking pipe that is full (EAGAIN) gets up to a second to take the rest.
      for (let tries = 0; off < b.length && tries < 100; ) {
        try {
          off += writeSync(this.fd, b, off);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return;
          tries++;
          Atomics.wait(pause, 0, 0, 10);
        }
      }
    }
    this.queued = 0;
  }

  private take(): Buffer | undefined {
    if (this.size === 0 && this.dropped === 0) return undefined;
    if (this.dropped > 0) {
      this.parts.unshift(`${JSON.stringify({ level: 40, time: Date.now(), msg: `log output stalled: dropped ${this.dropped} bytes of log lines` })}\n`);
      this.dropped = 0;
    }
    const text = this.parts.join("");
    this.parts = [];
    this.size = 0;
    return Buffer.from(text);
  }

  private pump(): void {
    if (this.writing) return;
    const b = this.queue[0];
    if (!b) return;
    this.writing = true;
    write(this.fd, b, 0, b.length, null, (err, n) => {
      this.writing = false;
      if (err) {
        // EAGAIN (a non-blocking pipe that is full): try again at the next flush; anything else drops the batch.
        if (err.code !== "EAGAIN") this.shift(b.length);
        return;
      }
      if (n < b.length) {
        this.queue[0] = b.subarray(n);
        this.queued -= n;
      } else this.shift(b.length);
      this.pump();
    });
  }

  private shift(bytes: number): void {
    this.queue.shift();
    this.queued -= bytes;
  }
}

const writers = new Map<number, LogWriter>();

/** The one {@link LogWriter} of file descriptor `fd` (created on first use). */
export function logWriter(fd: number): LogWriter {
  let w = writers.get(fd);
  if (!w) {
    w = new LogWriter(fd);
    writers.set(fd, w);
  }
  return w;
}
