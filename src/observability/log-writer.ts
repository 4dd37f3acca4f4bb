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
 * line costs a copy into the batch's buffer, and the threadpool hand-off of `fs.write` is
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
  /**
   * The batch being gathered. Each line is copied in as it comes, while its
   * string is fresh in the cache; strings held until the flush cost more
   * (the scavenger copies them, the join walks them cold).
   */
  private buf = Buffer.allocUnsafeSlow(BATCH_BYTES);
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
    // A UTF-16 code unit is at most 3 bytes of UTF-8: a line that may not fit in what is left starts a new batch.
    if (line.length * 3 > BATCH_BYTES - this.size) {
      if (this.size > 0) this.flush();
      if (line.length * 3 > BATCH_BYTES) {
        this.enqueue(Buffer.from(line));
        this.pump();
        return true;
      }
    }
    this.size += this.buf.write(line, this.size);
    return true;
  }

  /** Starts writing what is gathered (if no write is in progress, else queues it behind). */
  flush(): void {
    const batch = this.take();
    if (batch) this.enqueue(batch);
    this.pump();
  }

  /** Queues a batch behind the write in progress; past {@link MAX_HELD_BYTES} the oldest waiting go. */
  private enqueue(batch: Buffer): void {
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
    let batch = this.buf.subarray(0, this.size);
    if (this.size > 0) {
      this.buf = Buffer.allocUnsafeSlow(BATCH_BYTES);
      this.size = 0;
    }
    if (this.dropped > 0) {
      const notice = `${JSON.stringify({ level: 40, time: Date.now(), msg: `log output stalled: dropped ${this.dropped} bytes of log lines` })}\n`;
      this.dropped = 0;
      batch = Buffer.concat([Buffer.from(notice), batch]);
    }
    return batch;
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
