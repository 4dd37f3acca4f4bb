/**
 * What the push reader takes of an upstream body: a Node `Readable` (undici's
 * `request` body) is one, and so is the raw dispatcher body of
 * `postJsonStream` (no Readable per response). Events: `data` (a Buffer),
 * `end`, `error`, and `close` once it is over however it ended.
 */
export interface PushBody {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, fn: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: string, fn: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/** Items queued before the upstream socket is paused (backpressure). */
const HIGH_WATER = 64;
/** Queued items under which a paused socket is resumed. */
const LOW_WATER = 16;
/**
 * After the end marker, how long the rest of the body may take to arrive
 * before the request is closed (ms). Reading it to its end keeps the
 * upstream connection for the next request (with TLS, a new one costs a
 * handshake); an upstream that keeps sending past this is cut off.
 */
const DRAIN_AFTER_END_MS = 1_000;

/** What a framing (SSE, AWS event stream) hands its decoded items to. */
export interface PushSink<T> {
  /** Queues one item for the engine (dropped once the stream has finished). */
  readonly emit: (item: T) => void;
  /** The stream's end marker was seen: what is queued is delivered, the rest of the body is drained and dropped. */
  done(): void;
  /** Fails the stream with `err` after what is queued (the body is closed). */
  fail(err: Error): void;
  /** True once no more items will be taken (end marker, failure, or the consumer left). */
  readonly finished: boolean;
}

/**
 * One wire framing over an upstream body: it decodes the bytes of each read
 * and hands items to the sink synchronously, in the same turn as the read.
 */
export interface PushFraming<T> {
  /** Decodes one read of the body. Throwing fails the stream with {@link PushFraming.readError}'s mapping. */
  onData(bytes: Buffer, sink: PushSink<T>): void;
  /**
   * The body ended. Flush what is buffered; throw to fail the stream (a
   * truncation: no end marker came), return to end it cleanly.
   */
  onEnd(sink: PushSink<T>): void;
  /** The error a body that failed while being read (reset, aborted, undecodable) ends the stream with. */
  readError(e: unknown): Error;
}

/**
 * The push reader every streamed upstream body goes through: undici's
 * `data` callback runs the framing (SSE, binary event stream) in the same
 * turn as the socket read, and the items it emits wait in a queue that the
 * engine pulls from. Per upstream read this costs one callback and, when the
 * engine is waiting, one promise — not a chain of async generators per event
 * (the benchmark showed that chain as most of the per-chunk cost).
 *
 * The contract every framing shares:
 * - Backpressure: the socket is paused while {@link HIGH_WATER} items wait
 *   unread, and resumed once the engine has taken them down to
 *   {@link LOW_WATER}.
 * - Life: a read that yields no item (SSE pings, comments, a role-only
 *   delta, half a binary frame) calls `alive`, so the engine's timeouts count
 *   silence on the wire rather than gaps between items.
 * - End: after the end marker ({@link PushSink.done}) the rest of the body is
 *   read and dropped for up to {@link DRAIN_AFTER_END_MS}, so that the
 *   connection goes back to the pool; a body still open then is destroyed.
 *   A body that ends without one is judged by the framing's `onEnd`
 *   (truncation).
 * - `return()` (the engine cancelled the stream) destroys the body, closing
 *   the upstream request.
 */
export class PushQueue<T> implements AsyncIterableIterator<T>, PushSink<T> {
  private readonly queue: T[] = [];
  private head = 0;
  /** The settling functions of the `next()` promise waiting for an item (kept here, not in an object per wait). */
  waitResolve: ((r: IteratorResult<T>) => void) | undefined;
  waitReject: ((e: unknown) => void) | undefined;
  private error: Error | undefined;
  private isFinished = false;
  private bodyEnded = false;
  private paused = false;
  /** Whether the read being decoded produced an item. */
  private emitted = false;

  constructor(
    private readonly body: PushBody,
    private readonly framing: PushFraming<T>,
    private readonly alive?: (() => void) | undefined,
  ) {
    // Anonymous arrows made here rather than arrow class fields: under tsx (esbuild keepNames) a named arrow made per stream costs an Object.defineProperty.
    this.emit = (item: T) => this.push(item);
    body.on("data", (bytes: Buffer) => this.onData(bytes));
    body.on("end", () => this.onEnd());
    body.on("error", (e: unknown) => this.onError(e));
  }

  /** True once no more items will come (end marker, clean end, failure or return()). */
  get finished(): boolean {
    return this.isFinished;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  /**
   * The next item when one is queued, the end once nothing more will come,
   * or throws the stream's error (as `next()` would reject); `undefined`
   * when the caller must await `next()` (see `engine/poll.ts`).
   */
  tryNext(): IteratorResult<T> | undefined {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head]!;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      if (this.paused && this.queue.length - this.head <= LOW_WATER) this.resume();
      return { done: false, value };
    }
    const err = this.error;
    if (err) {
      this.error = undefined;
      throw err;
    }
    if (this.isFinished) return { done: true, value: undefined };
    return undefined;
  }

  next(): Promise<IteratorResult<T>> {
    let ready: IteratorResult<T> | undefined;
    try {
      ready = this.tryNext();
    } catch (e) {
      // What tryNext threw, as next() rejects with it (an Error or an abort reason).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(e);
    }
    if (ready) return Promise.resolve(ready);
    if (this.paused) this.resume();
    // A module function as executor (no closure per wait): it keeps the settling functions on the queue.
    capturing = this as PushQueue<unknown>;
    const p = new Promise<IteratorResult<T>>(captureWait);
    capturing = undefined;
    return p;
  }

  /** The consumer stopped early: nothing more is read, the upstream request is closed. */
  return(): Promise<IteratorResult<T>> {
    this.isFinished = true;
    this.error = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.settle();
    if (!this.bodyEnded) this.body.destroy();
    return Promise.resolve({ done: true, value: undefined });
  }

  readonly emit: (item: T) => void;

  private push(item: T): void {
    if (this.isFinished) return;
    this.emitted = true;
    const resolve = this.waitResolve;
    if (resolve) {
      this.waitResolve = undefined;
      this.waitReject = undefined;
      resolve({ done: false, value: item });
      return;
    }
    this.queue.push(item);
    if (!this.paused && this.queue.length - this.head >= HIGH_WATER) {
      this.paused = true;
      this.body.pause();
    }
  }

  /** The end marker: deliver what is queued, then done; read the body's end (briefly) so the connection is kept. */
  done(): void {
    if (this.isFinished) return;
    this.isFinished = true;
    this.settle();
    if (this.paused) this.resume();
    if (this.bodyEnded) return;
    const timer = setTimeout(() => {
      if (!this.bodyEnded) this.body.destroy();
    }, DRAIN_AFTER_END_MS);
    timer.unref();
    this.body.once("close", () => clearTimeout(timer));
  }

  fail(err: Error): void {
    if (this.isFinished) return;
    this.isFinished = true;
    this.error = err;
    this.settle();
    if (!this.bodyEnded) this.body.destroy();
  }

  private onData(bytes: Buffer): void {
    if (this.isFinished) return;
    this.emitted = false;
    try {
      this.framing.onData(bytes, this);
    } catch (e) {
      this.fail(this.framing.readError(e));
      return;
    }
    if (!this.emitted) this.alive?.();
  }

  private onEnd(): void {
    this.bodyEnded = true;
    if (this.isFinished) return;
    try {
      this.framing.onEnd(this);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (this.isFinished) return;
    this.isFinished = true;
    this.settle();
  }

  private onError(e: unknown): void {
    this.bodyEnded = true;
    if (this.isFinished) return;
    this.fail(this.framing.readError(e));
  }

  /** Wakes a waiting consumer once nothing is queued and no more will come. */
  private settle(): void {
    const resolve = this.waitResolve;
    const reject = this.waitReject;
    if (!resolve || !reject || this.head < this.queue.length) return;
    this.waitResolve = undefined;
    this.waitReject = undefined;
    const err = this.error;
    if (err) {
      this.error = undefined;
      reject(err);
    } else resolve({ done: true, value: undefined });
  }

  private resume(): void {
    this.paused = false;
    this.body.resume();
  }
}

/** The queue whose `next()` promise is being made (read by {@link captureWait}, synchronously). */
let capturing: PushQueue<unknown> | undefined;

/** A waiting `next()` promise's executor: its settling functions kept on the queue (a module function: no closure per wait). */
function captureWait<T>(resolve: (r: IteratorResult<T>) => void, reject: (e: unknown) => void): void {
  const q = capturing as PushQueue<T>;
  q.waitResolve = resolve;
  q.waitReject = reject;
}
