import { Finish_Reason, type Chunk, type Usage } from "../gen/spillway/v1/chunk.js";
import { Code } from "./code.js";
import { SpillwayError, stackless } from "./errors.js";
import type { LinkedAbortController } from "./signals.js";
import { emptyUsage, maxUsage, type ChunkPayload } from "./payload.js";
import type { Route } from "./router.js";
import { tryNext } from "./poll.js";

/** Timeouts of one stream, in milliseconds. */
export interface StreamTimeouts {
  /** From the request to the first chunk. */
  readonly firstChunkMs: number;
  /** Between two chunks, counted only while the door is waiting for one. */
  readonly idleMs: number;
  /** Absolute end of the stream (epoch ms). */
  readonly deadline: number;
}

/** How a stream ended, for logs and metrics. */
export interface StreamSummary {
  readonly id: string;
  readonly route: Route;
  /** Labels the provider set (e.g. `key`). */
  readonly labels: Readonly<Record<string, string>>;
  /** `ok`, or the error that ended it (`Canceled` when the client left). */
  readonly outcome: "ok" | SpillwayError;
  readonly finishReason: Finish_Reason | undefined;
  readonly usage: Usage;
  /** Chunks delivered to the door, terminal ones included. */
  readonly chunks: number;
  /** performance.now() at start, first chunk and end. */
  readonly startedAt: number;
  readonly firstChunkAt: number | undefined;
  readonly endedAt: number;
}

/**
 * A stream the engine hands to a door: an async iterator of {@link Chunk}s
 * obeying the stream invariant, plus what the door needs to label them.
 */
export interface EngineStream extends AsyncIterable<Chunk> {
  /** The stream id (also used as the OpenAI response id). */
  readonly id: string;
  /** Where the model id was routed. */
  readonly route: Route;
  /** Unix time (s) the stream started, as OpenAI's `created`. */
  readonly created: number;
  /** The AbortSignal every part of this call observes. */
  readonly signal: AbortSignal;
  /** Labels the provider set (e.g. `key`: the upstream key's name). */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Stops the stream at once and aborts the upstream request or child
   * process. Safe to call any number of times, at any point.
   */
  cancel(reason?: unknown): void;
  /**
   * The next chunk when it is ready without waiting, `undefined` when the
   * door must await the iterator's `next()` (see `poll.ts`). Optional: a
   * wrapper without it is simply awaited.
   */
  tryNext?(): IteratorResult<Chunk> | undefined;
}

/** Told once when a stream ends, however it ends (an object, not a closure per stream). */
export interface StreamEndHook {
  ended(summary: StreamSummary): void;
}

const enum Phase {
  Content,
  Usage,
  Finish,
  Done,
}

/**
 * The engine's per-stream state machine. It pulls payloads from a provider,
 * stamps stream id and seq, holds back usage and finish until the provider's
 * stream ends (whatever order the upstream used), turns failures after the
 * first chunk into one in-band `error` chunk, and enforces the timeouts.
 * Failures before the first chunk are thrown from {@link ActiveStream.prime}.
 */
export class ActiveStream implements EngineStream, AsyncIterator<Chunk> {
  readonly created = Math.floor(Date.now() / 1000);
  private readonly iterator: AsyncIterator<ChunkPayload>;
  /** Rejects the pull in progress (the call was aborted while waiting on the provider). */
  rejectPull: ((reason: unknown) => void) | undefined;
  /**
   * Whether the pull in progress settles with the chunk itself (made by
   * {@link ActiveStream.nextPulled} with no other pull waiting): its promise
   * is the one `next()` returned, so the provider's result is mapped
   * ({@link ActiveStream.afterPull} / {@link ActiveStream.pullFailed}) before
   * it is settled.
   */
  private direct = false;
  /** Resolves the pull in progress with the provider's result (see {@link ActiveStream.payloadIn}). */
  resolvePull: ((r: IteratorResult<ChunkPayload>) => void) | undefined;
  private onPulled: ((r: IteratorResult<ChunkPayload>) => IteratorResult<Chunk> | Promise<IteratorResult<Chunk>>) | undefined;
  private onPullFailed: ((e: unknown) => IteratorResult<Chunk>) | undefined;
  private onPayload: ((r: IteratorResult<ChunkPayload>) => void) | undefined;
  private onPayloadFailed: ((e: unknown) => void) | undefined;
  private seq = 0;
  private phase = Phase.Content;
  private readonly usage = emptyUsage();
  private finishReason: Finish_Reason | undefined;
  private stopSequence = "";
  private primed: Chunk | undefined;
  private waitingSince = 0;
  /**
   * The stream's one timer (see {@link ActiveStream.onWatchdog}): armed at
   * the first pull for the first-chunk limit (or the deadline, if sooner),
   * then for whichever of the idle limit and the deadline comes first. A
   * stream that ends before either pays one timer, not one per limit.
   */
  private watchdog: NodeJS.Timeout | undefined;
  /** When the watchdog fires (performance.now() time). */
  private watchdogDue = 0;
  /** The stream's absolute deadline, as performance.now() time. */
  private readonly deadlineAt: number;
  /** The deadline's length when the stream started (ms), for its error message. */
  private readonly deadlineMs: number;
  private readonly startedAt = performance.now();
  private firstChunkAt: number | undefined;

  constructor(
    readonly id: string,
    readonly route: Route,
    private readonly controller: LinkedAbortController,
    source: AsyncIterable<ChunkPayload>,
    private readonly timeouts: StreamTimeouts,
    readonly labels: Readonly<Record<string, string>>,
    private readonly onEnd: StreamEndHook | undefined,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
    // The controller's own hook (no listener on its signal): a pull in progress is rejected with the reason.
    if (!controller.isAborted) {
      controller.onAbort = (reason) => {
        const reject = this.rejectPull;
        this.rejectPull = undefined;
        this.waitingSince = 0;
        if (this.direct && reject) {
          // Mapped a microtask later, as the `.then` it replaces did (not inside the abort that called this).
          const resolve = this.resolvePull!;
          this.direct = false;
          this.resolvePull = undefined;
          queueMicrotask(() => settleWith(resolve, reject, this, reason));
          return;
        }
        reject?.(reason);
      };
    }
    const left = Math.max(0, timeouts.deadline - Date.now());
    this.deadlineMs = left;
    this.deadlineAt = this.startedAt + left;
    // A deadline already passed: aborted from a timer as soon as possible, as a timer of 0 ms would.
    if (left === 0) this.armWatchdog(0);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Pulls the first chunk. Throws the provider's error (as a SpillwayError)
   * when the stream fails before producing anything, so the door can answer
   * with a real status.
   */
  async prime(): Promise<void> {
    const first = await this.next();
    if (!first.done) this.primed = first.value;
  }

  [Symbol.asyncIterator](): AsyncIterator<Chunk> {
    return this;
  }

  /** The provider showed life without a payload (`ProviderContext.alive`): the wait restarts now. */
  touch(): void {
    if (this.waitingSince !== 0) this.waitingSince = performance.now();
  }

  /**
   * The next chunk when it is ready without waiting: a primed or terminal
   * chunk, or a payload the provider already holds (see `poll.ts`);
   * `undefined` when the caller must await `next()`. Throws where `next()`
   * would reject (a failure before the first chunk).
   */
  tryNext(): IteratorResult<Chunk> | undefined {
    if (this.primed) {
      const c = this.primed;
      this.primed = undefined;
      return { done: false, value: c };
    }
    switch (this.phase) {
      case Phase.Usage:
        this.phase = Phase.Finish;
        return this.emit({ $case: "usage", value: this.usage });
      case Phase.Finish:
        this.phase = Phase.Done;
        this.end("ok");
        return this.emit({ $case: "finish", value: { reason: this.finishReason ?? Finish_Reason.REASON_STOP, stopSequence: this.stopSequence } });
      case Phase.Done:
        return { done: true, value: undefined };
      case Phase.Content:
        break;
    }
    for (;;) {
      let r: IteratorResult<ChunkPayload> | undefined;
      try {
        // An aborted call fails even with payloads queued, as a pull would.
        if (this.controller.isAborted) throw this.controller.abortReason;
        r = tryNext(this.iterator);
      } catch (e) {
        return this.fail(e);
      }
      if (r === undefined) return undefined;
      const out = this.take(r);
      if (out !== undefined) return out;
    }
  }

  next(): Promise<IteratorResult<Chunk>> {
    try {
      const ready = this.tryNext();
      if (ready !== undefined) return Promise.resolve(ready);
    } catch (e) {
      // What tryNext threw, as next() rejects with it (an Error or an abort reason).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(e);
    }
    return this.nextPulled();
  }

  /** Waits for the provider's next payload (content, or the end). */
  private nextPulled(): Promise<IteratorResult<Chunk>> {
    // One pull at a time (the usual case): the pull's own promise settles with the chunk (see payloadIn), no `.then` promise per chunk.
    let pulled: Promise<IteratorResult<ChunkPayload>>;
    if (this.resolvePull === undefined) {
      this.direct = true;
      pulled = this.pull();
      if (this.resolvePull !== undefined) return pulled as Promise<unknown> as Promise<IteratorResult<Chunk>>;
      // Rejected at once (the call was aborted): mapped below.
      this.direct = false;
    } else pulled = this.pull();
    // A promise chain, not an async loop: no async frame and awaited promise per pull (a pull per chunk of a paced stream).
    return pulled.then((this.onPulled ??= pulledOf(this)), (this.onPullFailed ??= pullFailedOf(this)));
  }

  /** A pull's payload (see {@link pulledOf}): the chunk to hand on, or, for usage/finish held back, what comes next. */
  afterPull(r: IteratorResult<ChunkPayload>): IteratorResult<Chunk> | Promise<IteratorResult<Chunk>> {
    const out = this.take(r);
    if (out !== undefined) return out;
    // Usage or finish held back: what the provider holds now needs no wait.
    const ready = this.tryNext();
    if (ready !== undefined) return ready;
    return this.nextPulled();
  }

  /** A pull that failed (see {@link pullFailedOf}): an in-band error chunk, or thrown before the first chunk. */
  pullFailed(e: unknown): IteratorResult<Chunk> {
    return this.fail(e);
  }

  /** One provider result: a chunk to hand on, or `undefined` for usage/finish held back to the end. */
  private take(r: IteratorResult<ChunkPayload>): IteratorResult<Chunk> | undefined {
    if (r.done) {
      this.phase = Phase.Finish;
      return this.emit({ $case: "usage", value: this.usage });
    }
    const p = r.value;
    switch (p.$case) {
      case "usage":
        maxUsage(this.usage, p.value);
        return undefined;
      case "finish":
        this.finishReason = p.value.reason;
        this.stopSequence = p.value.stopSequence;
        return undefined;
      case "error":
        return this.fail(SpillwayError.fromChunkError(p.value));
      default:
        return this.emit(p);
    }
  }

  return(): Promise<IteratorResult<Chunk>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  cancel(reason?: unknown): void {
    if (this.phase === Phase.Done) return;
    const err =
      reason instanceof SpillwayError
        ? reason
        : stackless(() => new SpillwayError(Code.Canceled, "the client cancelled the request", { cause: reason }));
    this.controller.abort(err);
    this.phase = Phase.Done;
    this.primed = undefined;
    this.end(err);
    void this.iterator.return?.()?.catch?.(() => undefined);
  }

  private emit(payload: ChunkPayload): IteratorResult<Chunk> {
    this.firstChunkAt ??= performance.now();
    return { done: false, value: { streamId: this.id, seq: this.seq++, payload } };
  }

  private fail(e: unknown): IteratorResult<Chunk> {
    const c = this.controller;
    const err = SpillwayError.from(c.isAborted ? c.abortReason : e);
    if (this.phase === Phase.Done) return { done: true, value: undefined };
    this.phase = Phase.Done;
    this.controller.abort(err);
    this.end(err);
    void this.iterator.return?.()?.catch?.(() => undefined);
    if (this.seq === 0) throw err;
    return this.emit({ $case: "error", value: err.toChunkError() });
  }

  private pull(): Promise<IteratorResult<ChunkPayload>> {
    const now = performance.now();
    this.waitingSince = now;
    const limit = this.currentLimit();
    // Arm the watchdog only if it is not already due soon enough: with chunks
    // flowing this is a no-op, so chunks cost no timer work. Never later than the deadline.
    if (!this.watchdog || this.watchdogDue > now + limit) this.armWatchdog(Math.min(limit, this.deadlineAt - now));
    const next = this.iterator.next();
    if (this.controller.isAborted) {
      next.catch(() => undefined);
      this.waitingSince = 0;
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(this.controller.abortReason);
    }
    // A plain promise settled by whichever comes first, the provider's next
    // payload or the abort listener: unlike Promise.race against one abort
    // promise per stream, nothing accumulates per chunk. Its settling
    // functions are kept on the stream and the provider's promise handled by
    // the stream's own two handlers (made once): no closure per pull.
    if (this.resolvePull === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- read by capturePull during the Promise constructor, then cleared
      capturing = this;
      const pulled = new Promise<IteratorResult<ChunkPayload>>(capturePull);
      capturing = undefined;
      next.then((this.onPayload ??= payloadOf(this)), (this.onPayloadFailed ??= payloadFailedOf(this)));
      return pulled;
    }
    // A second pull while one waits (a consumer that does not await each next()): closures of its own, as before.
    return new Promise<IteratorResult<ChunkPayload>>((resolve, reject) => {
      this.rejectPull = reject;
      next.then(
        (r) => {
          this.rejectPull = undefined;
          this.waitingSince = 0;
          resolve(r);
        },
        (e: unknown) => {
          this.rejectPull = undefined;
          this.waitingSince = 0;
          // The provider's own rejection, passed on as it is (as Promise.race did).
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(e);
        },
      );
    });
  }

  /** The provider's result for the pull in progress (see {@link payloadOf}); a no-op for a pull an abort already rejected. */
  payloadIn(r: IteratorResult<ChunkPayload>): void {
    const resolve = this.resolvePull;
    const reject = this.rejectPull;
    this.resolvePull = undefined;
    this.rejectPull = undefined;
    this.waitingSince = 0;
    if (this.direct) {
      this.direct = false;
      if (!resolve || !reject) return;
      let out: IteratorResult<Chunk> | Promise<IteratorResult<Chunk>>;
      try {
        out = this.afterPull(r);
      } catch (e) {
        reject(e);
        return;
      }
      (resolve as (v: unknown) => void)(out);
      return;
    }
    resolve?.(r);
  }

  /** The provider's rejection of the pull in progress, passed on as it is (as Promise.race did). */
  payloadFailedIn(e: unknown): void {
    const resolve = this.resolvePull;
    const reject = this.rejectPull;
    this.resolvePull = undefined;
    this.rejectPull = undefined;
    this.waitingSince = 0;
    if (this.direct) {
      this.direct = false;
      if (resolve && reject) settleWith(resolve, reject, this, e);
      return;
    }
    reject?.(e);
  }

  private currentLimit(): number {
    return this.seq === 0 ? this.timeouts.firstChunkMs : this.timeouts.idleMs;
  }

  private armWatchdog(ms: number, unref = false): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    // Within what a Node timer can wait (longer fires at once): a far deadline is re-armed when this fires early.
    const at = Math.min(Math.max(0, ms), MAX_TIMER_MS);
    this.watchdogDue = performance.now() + at;
    this.watchdog = setTimeout(fireWatchdog, at, this);
    // Armed for the deadline alone (no pull waiting): it does not keep the process alive, as the deadline never did.
    if (unref) this.watchdog.unref();
  }

  /**
   * One lazy timer per stream (called by {@link fireWatchdog}): past the
   * deadline it aborts the stream (`timeout`); with a pull waiting past the
   * first-chunk or idle limit it aborts it (`upstream_timeout`); else it is
   * re-armed for what comes first — the rest of the limit while a pull waits,
   * the deadline while none does.
   */
  onWatchdog(): void {
    this.watchdog = undefined;
    if (this.phase === Phase.Done) return;
    const now = performance.now();
    if (now >= this.deadlineAt) {
      this.controller.abort(
        new SpillwayError(Code.DeadlineExceeded, `the stream exceeded its deadline (${Math.round(this.deadlineMs)} ms)`, {
          httpStatus: 504,
          reason: "timeout",
        }),
      );
      return;
    }
    if (this.waitingSince === 0) {
      this.armWatchdog(this.deadlineAt - now, true);
      return;
    }
    const limit = this.currentLimit();
    const waited = now - this.waitingSince;
    if (waited >= limit) {
      const what =
        this.seq === 0
          ? `the upstream did not start streaming within ${limit} ms`
          : `the upstream sent nothing for ${limit} ms`;
      this.controller.abort(
        new SpillwayError(Code.DeadlineExceeded, `${this.route.provider.name}: ${what}`, {
          httpStatus: 504,
          reason: "upstream_timeout",
        }),
      );
      return;
    }
    this.armWatchdog(Math.min(limit - waited, this.deadlineAt - now));
  }

  private end(outcome: "ok" | SpillwayError): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    this.controller.cleanup();
    this.onEnd?.ended({
      id: this.id,
      route: this.route,
      labels: this.labels,
      outcome,
      finishReason: outcome === "ok" ? (this.finishReason ?? Finish_Reason.REASON_STOP) : undefined,
      usage: this.usage,
      chunks: this.seq + (outcome === "ok" ? 1 : 0),
      startedAt: this.startedAt,
      firstChunkAt: this.firstChunkAt,
      endedAt: performance.now(),
    });
  }
}

/** Settles a direct pull ({@link ActiveStream.nextPulled}) that failed with what `pullFailed` makes of `e`: an error chunk, or its throw. */
function settleWith(resolve: (r: IteratorResult<ChunkPayload>) => void, reject: (e: unknown) => void, s: ActiveStream, e: unknown): void {
  let out: IteratorResult<Chunk>;
  try {
    out = s.pullFailed(e);
  } catch (err) {
    reject(err);
    return;
  }
  (resolve as (v: unknown) => void)(out);
}

/** The stream whose pull promise is being made (read by {@link capturePull}, synchronously). */
let capturing: ActiveStream | undefined;

/** A pull promise's executor: its settling functions kept on the stream (a module function: no closure per pull). */
function capturePull(resolve: (r: IteratorResult<ChunkPayload>) => void, reject: (e: unknown) => void): void {
  capturing!.resolvePull = resolve;
  capturing!.rejectPull = reject;
}

// The stream's handlers, made once per stream by functions (anonymous arrows: no `__name` under tsx).
function pulledOf(s: ActiveStream): (r: IteratorResult<ChunkPayload>) => IteratorResult<Chunk> | Promise<IteratorResult<Chunk>> {
  return (r) => s.afterPull(r);
}
function pullFailedOf(s: ActiveStream): (e: unknown) => IteratorResult<Chunk> {
  return (e) => s.pullFailed(e);
}
function payloadOf(s: ActiveStream): (r: IteratorResult<ChunkPayload>) => void {
  return (r) => s.payloadIn(r);
}
function payloadFailedOf(s: ActiveStream): (e: unknown) => void {
  return (e) => s.payloadFailedIn(e);
}

/** The longest a Node timer waits (2^31 - 1 ms); a longer delay would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The watchdog timer's callback, with the stream as the timer's argument: a
 * module function rather than a per-stream arrow (under tsx each named arrow
 * made per stream costs an `Object.defineProperty`).
 */
function fireWatchdog(stream: ActiveStream): void {
  stream.onWatchdog();
}
