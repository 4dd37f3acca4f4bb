import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { Code } from "./code.js";
import { SpillwayError, stackless } from "./errors.js";
import type { LimitRejection, LimitStore } from "./limits/limit-store.js";
import { MemoryLimitStore } from "./limits/memory-limit-store.js";
import { OVERLOADED, type AdaptiveLimit, type Release } from "./adaptive-limit.js";

/** One gateway API key and its limits. */
export interface GatewayKey {
  readonly key: string;
  readonly name: string;
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  readonly maxConcurrentStreams?: number | undefined;
  /** Model ids or `provider/*` patterns; all models when absent. */
  readonly models?: readonly string[] | undefined;
}

/** Who is calling: a gateway key's name, or `anonymous` when the gateway is open. */
export interface Principal {
  readonly name: string;
  /** Index into the keys configured when it was authenticated; -1 for anonymous. */
  readonly index: number;
  /** The key's settings as they were when it was authenticated (a reload does not change a call in progress). */
  readonly key?: GatewayKey | undefined;
}

/** A granted stream slot; release it once, with the tokens the stream used. */
export interface Lease {
  release(tokens: number): void;
}

/**
 * A place taken at a door's first look at a request ({@link Admission.enter}),
 * before its body is read or its call decoded: it holds the process's
 * concurrency slot until the stream the request opens takes it over
 * (`admit(…, ticket)`: the slot then lives as long as the stream, counted
 * once), or until the door lets it go. `release()` is idempotent and a no-op
 * once a stream took the slot, so a door calls it when the request ends,
 * however it ends.
 */
export class Ticket {
  private slot: Release | undefined;
  private held = true;

  constructor(slot: Release | undefined) {
    this.slot = slot;
  }

  /** Whether the ticket still holds its place (not released, not taken by a stream). */
  get holding(): boolean {
    return this.held;
  }

  /** Hands the slot over to a stream (once): the stream's lease releases it from now on. */
  take(): Release | undefined {
    const s = this.slot;
    this.slot = undefined;
    this.held = false;
    return s;
  }

  /** Frees the slot unless a stream took it. */
  release(): void {
    this.take()?.();
  }
}

/** The refusal while the process's stream cap is reached: built once, stackless. */
const STREAM_CAP = stackless(
  () =>
    new SpillwayError(Code.Unavailable, "The gateway is at its limit of concurrent streams (limits.maxConcurrentStreams); try again shortly.", {
      reason: "server_overloaded",
      retryAfterMs: 1000,
      httpStatus: 503,
    }),
);

/** The refusal while the event loop is saturated (`limits.maxEventLoopUtilization`): built once, stackless. */
const LOOP_SATURATED = stackless(
  () =>
    new SpillwayError(Code.Unavailable, "The gateway is overloaded (its event loop is saturated); try again shortly.", {
      reason: "server_overloaded",
      retryAfterMs: 1000,
      httpStatus: 503,
    }),
);

/** The refusal while this process's realtime session cap is reached (`limits.maxRealtimeSessions`): built once, stackless. */
const SESSION_CAP = stackless(
  () =>
    new SpillwayError(Code.Unavailable, "The gateway is at its limit of open realtime sessions (limits.maxRealtimeSessions); try again shortly.", {
      reason: "server_overloaded",
      retryAfterMs: 1000,
      httpStatus: 503,
    }),
);

/** Why a request was refused for the process's load: the cap or signal that refused it. */
export type OverloadCause = "stream_cap" | "session_cap" | "event_loop" | "adaptive_limit";

/**
 * Which of the shared refusals `err` is (the process's stream cap, realtime
 * session cap, saturated loop, adaptive limit), for metrics and logs;
 * undefined for any other error (a drain, a key's limits, an upstream's).
 */
export function overloadCause(err: unknown): OverloadCause | undefined {
  if (err === STREAM_CAP) return "stream_cap";
  if (err === SESSION_CAP) return "session_cap";
  if (err === LOOP_SATURATED) return "event_loop";
  if (err === OVERLOADED) return "adaptive_limit";
  return undefined;
}

/** A realtime session let in at the upgrade ({@link Admission.openReservedSession}). */
export interface ReservedSession {
  /** Frees the session's place under the session cap (once, at close; idempotent). */
  readonly end: Release;
  /** The slot held for the session's first response. */
  readonly reservation: Ticket;
}

/** The ticket of a request that must wait for its slot: holds nothing. */
const SPENT = new Ticket(undefined);
SPENT.take();

/** Whether `err` is a refusal for the process's load (stream cap, saturated loop, adaptive limit): reason `server_overloaded`. */
export function isOverloadRefusal(err: SpillwayError): boolean {
  return err.reason === "server_overloaded";
}

interface KeyState {
  readonly digest: Buffer;
  readonly cfg: GatewayKey;
}

/** Settings of {@link Admission} beyond the keys. */
export interface AdmissionOptions {
  /** Streams open at once across the gateway (this process); more get 503. */
  readonly maxConcurrentStreams: number;
  /** Where per-key usage is counted; this process's memory when absent. */
  readonly store?: LimitStore | undefined;
  /** How long a stream lease lives in the store if its holder dies (ms). */
  readonly leaseTtlMs?: number | undefined;
  /** When the store fails: admit without counting (true) or answer 503 (false). */
  readonly failOpen?: boolean | undefined;
  /** Told about store failures (for logs). */
  readonly onStoreError?: ((e: unknown) => void) | undefined;
  /** True while this process is saturated: new streams get 503 (see `LoadMonitor`). */
  readonly overloaded?: (() => boolean) | undefined;
  /** Adaptive concurrency: a slot per stream, refused past the process's capacity (see `AdaptiveLimit`). */
  readonly concurrency?: AdaptiveLimit | undefined;
  /**
   * Realtime sessions open at once in this process (`limits.maxRealtimeSessions`;
   * each holds sockets the stream cap does not count); more are refused at
   * the upgrade. Unbounded when absent.
   */
  readonly maxRealtimeSessions?: number | undefined;
  /** Told of each refusal for the process's load, by cause (metrics): at `enter`/`admit`/`hold`, `openSession` and a `refusal()` found. */
  readonly onRefusal?: ((cause: OverloadCause) => void) | undefined;
}

/**
 * Whether `authorization` (`Bearer <key>` or the bare key) carries `expected`,
 * compared in constant time: for single keys outside the gateway keys
 * (metrics, admin).
 */
export function keyMatches(expected: string, authorization: string | undefined): boolean {
  const presented = (authorization ?? "").replace(/^bearer\s+/i, "").trim();
  return timingSafeEqual(sha256(presented), sha256(expected));
}

const ANONYMOUS: Principal = { name: "anonymous", index: -1 };
const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Gateway keys and limits, for every door: authenticates a bearer key
 * (compared in constant time against every configured key), and admits a
 * stream only within the key's model list, requests/min, tokens/min and
 * concurrent-stream cap (counted in a {@link LimitStore}: memory, or Redis
 * shared by every worker and instance), and this process's stream cap;
 * bounds this process's open realtime sessions ({@link Admission.openSession},
 * `limits.maxRealtimeSessions`); and says why it refused ({@link
 * Admission.refusal}: each cap's own shared error).
 */
export class Admission {
  private keys: KeyState[];
  private readonly store: LimitStore;
  private streams = 0;
  private maxStreams: number;
  private sessions = 0;
  private maxSessions: number;
  private readonly openByKey = new Map<string, number>();

  constructor(
    keys: readonly GatewayKey[],
    private readonly opts: AdmissionOptions,
  ) {
    this.keys = keys.map((cfg) => ({ digest: sha256(cfg.key), cfg }));
    this.store = opts.store ?? new MemoryLimitStore();
    this.maxStreams = opts.maxConcurrentStreams;
    this.maxSessions = opts.maxRealtimeSessions ?? Infinity;
  }

  /**
   * Replaces the keys and the process's stream cap (config reload). Callers
   * authenticated before keep the key settings they had; per-key usage is
   * counted by key name, so a key that stays keeps its counts.
   */
  reconfigure(keys: readonly GatewayKey[], maxConcurrentStreams: number, maxRealtimeSessions?: number): void {
    this.keys = keys.map((cfg) => ({ digest: sha256(cfg.key), cfg }));
    this.maxStreams = maxConcurrentStreams;
    if (maxRealtimeSessions !== undefined) this.maxSessions = maxRealtimeSessions;
  }

  /** Closes the store's connections. */
  close(): Promise<void> {
    return this.store.close();
  }

  /** The keys' settings (the console shows them, without the keys themselves). */
  get keySettings(): ReadonlyArray<Omit<GatewayKey, "key">> {
    return this.keys.map(({ cfg }) => ({ name: cfg.name, rpm: cfg.rpm, tpm: cfg.tpm, maxConcurrentStreams: cfg.maxConcurrentStreams, models: cfg.models }));
  }

  /** Streams open now in this process under the key named `name`. */
  openStreamsOf(name: string): number {
    return this.openByKey.get(name) ?? 0;
  }

  /** Whether callers must present a key. */
  get required(): boolean {
    return this.keys.length > 0;
  }

  /** Streams open right now, across every key. */
  get openStreams(): number {
    return this.streams;
  }

  /** Realtime sessions open right now (each took {@link openSession}). */
  get openSessions(): number {
    return this.sessions;
  }

  /** This process's realtime session cap (Infinity when unbounded). */
  get sessionLimit(): number {
    return this.maxSessions;
  }

  /** This process's stream cap (`limits.maxConcurrentStreams`, or its derived default). */
  get streamLimit(): number {
    return this.maxStreams;
  }

  /** Adaptive slots held right now (streams, tickets, followers); 0 with the adaptive limit off. */
  get slotsHeld(): number {
    return this.opts.concurrency?.inflight ?? 0;
  }

  /**
   * Finds the key in an `Authorization: Bearer …` value (or a bare key).
   * Throws `Unauthenticated` (401) when keys are configured and none matches.
   */
  authenticate(authorization: string | undefined): Principal {
    if (!this.required) return ANONYMOUS;
    const presented = (authorization ?? "").replace(/^bearer\s+/i, "").trim();
    if (!presented) {
      throw new SpillwayError(Code.Unauthenticated, "You didn't provide an API key: send it as 'Authorization: Bearer <key>'.", {
        reason: "missing_api_key",
      });
    }
    const digest = sha256(presented);
    let found = -1;
    for (let i = 0; i < this.keys.length; i++) {
      // Every key is compared, whatever matched, so timing says nothing.
      if (timingSafeEqual(digest, this.keys[i]!.digest) && found < 0) found = i;
    }
    if (found < 0) throw new SpillwayError(Code.Unauthenticated, "Incorrect API key provided.", { reason: "invalid_api_key" });
    const cfg = this.keys[found]!.cfg;
    return { name: cfg.name, index: found, key: cfg };
  }

  /**
   * Checks, without counting anything, that `principal` may use every model
   * in `models` (its key's `models` list; every model when the key has none
   * or the gateway is open). Throws `PermissionDenied` (403) naming the first
   * model outside the list. For doors that admit a session before its streams
   * (the realtime upgrade).
   */
  checkModels(principal: Principal | undefined, models: readonly string[]): void {
    const state = principal && principal.index >= 0 ? this.keys[principal.index] : undefined;
    if (state) checkModels(state.cfg, models);
  }

  /**
   * The process-wide part of admission, for a door to call as early as it
   * can (HTTP: right after the route match, before the body is read; gRPC:
   * first thing in the call; realtime: see {@link wouldAdmit}): refuses with
   * the shared, stackless `server_overloaded` error (503 + Retry-After 1 s /
   * `UNAVAILABLE`) while this process's stream cap is reached, its event loop
   * is saturated (`limits.maxEventLoopUtilization`) or the adaptive limit has
   * no slot and its queue is full. Synchronous, so a refusal costs no
   * promise and a door has not yet registered for a body it will never read:
   * returns a {@link Ticket} holding a slot when one is free, or a spent
   * ticket when the request would have to wait in the adaptive queue (it then
   * waits, at most `queueMs`, in {@link admit}, after the body is read). Pass
   * the ticket to {@link admit} (through `CallOptions.ticket`) and release it
   * when the request ends.
   * The per-key checks (401/403/429) stay in {@link admit}.
   */
  enter(): Ticket {
    if (this.streams >= this.maxStreams) throw this.refused(STREAM_CAP);
    if (this.opts.overloaded?.()) throw this.refused(LOOP_SATURATED);
    const c = this.opts.concurrency;
    if (!c || c.hasRoom()) return new Ticket(c ? (c.enter() as Release) : undefined);
    if (!c.canQueue()) throw this.refused(OVERLOADED);
    // It would wait: the wait happens in admit (a door must not await before it has registered for the body).
    return SPENT;
  }

  /**
   * The refusal {@link enter} would throw right now, counted as `enter`
   * counts it, or undefined when `enter` would return a ticket (a slot, or a
   * spent one that waits in the queue); nothing is taken. For a door that
   * turns a call away before it has built anything to carry a ticket (the
   * gRPC door at the HTTP/2 stream, `doors/grpc/stream-refusal.ts`) and calls
   * `enter` in the same synchronous turn when this says yes, so the two agree.
   */
  entryRefusal(): SpillwayError | undefined {
    if (this.streams >= this.maxStreams) return this.refused(STREAM_CAP);
    if (this.opts.overloaded?.()) return this.refused(LOOP_SATURATED);
    const c = this.opts.concurrency;
    if (c && !c.hasRoom() && !c.canQueue()) return this.refused(OVERLOADED);
    return undefined;
  }

  /**
   * A ticket that holds a slot, for a request that opens no engine stream
   * but does a stream's work for as long as it lasts (a follower of the
   * durable log: replay, then live): `ticket` itself while it holds its
   * place, else (a spent ticket from {@link enter}: it would wait) a new one
   * once the adaptive queue grants a slot — at most `queueMs`, then the
   * shared refusal. Only for a door that may await here (no body still to
   * register). The slot is freed by the ticket's `release()`, once.
   */
  async hold(ticket: Ticket): Promise<Ticket> {
    if (ticket.holding) return ticket;
    const c = this.opts.concurrency;
    return new Ticket(c ? await this.queued(c.acquire()) : undefined);
  }

  /** Counts a refusal (see `onRefusal`) and returns it, to be thrown. */
  private refused(err: SpillwayError): SpillwayError {
    const cause = overloadCause(err);
    if (cause) this.opts.onRefusal?.(cause);
    return err;
  }

  /** A wait in the adaptive queue, its refusal (the queue's time is up) counted. */
  private async queued(wait: Promise<Release>): Promise<Release> {
    try {
      return await wait;
    } catch (e) {
      throw e instanceof SpillwayError ? this.refused(e) : e;
    }
  }

  /**
   * Whether {@link enter} would grant a slot at once, taking nothing: for a
   * door that admits a long-lived session before its streams (the realtime
   * upgrade, `response.create`), whose idle time must not hold a slot. Each
   * stream the session opens is then admitted as usual.
   */
  wouldAdmit(): boolean {
    return this.refusal() === undefined;
  }

  /**
   * The refusal {@link enter} would give a stream arriving now that found
   * no slot free at once — the process's stream cap, its saturated loop, or
   * the adaptive limit, checked in that order — or undefined when it would
   * be admitted; nothing is taken. For a door that refuses without taking a
   * slot ({@link wouldAdmit}) and must still say the real reason: the
   * shared, stackless errors, rendered by the door as any other error.
   * With a `reservation` that still holds its slot (a realtime session's
   * first response, {@link openReservedSession}) only the stream cap is
   * checked: the stream will take that slot over.
   */
  refusal(reservation?: Ticket): SpillwayError | undefined {
    if (this.streams >= this.maxStreams) return this.refused(STREAM_CAP);
    // A stream that will take a held ticket's slot over asks for no other: only the hard cap applies (as in `admit`).
    if (reservation?.holding) return undefined;
    if (this.opts.overloaded?.()) return this.refused(LOOP_SATURATED);
    if (this.opts.concurrency && !this.opts.concurrency.hasRoom()) return this.refused(OVERLOADED);
    return undefined;
  }

  /**
   * Opens one realtime session (the upgrade), or throws the shared refusal:
   * the session cap (`limits.maxRealtimeSessions`: a session holds its
   * client socket and, for a cascade, recognizer and TTS upstream sockets,
   * for a relayed model the upstream socket — none of them counted by the
   * stream cap), then {@link refusal}'s (the session's streams would be
   * refused). Takes no stream slot: an idle session must not hold one. Call
   * the returned release once when the session ends (idempotent).
   */
  openSession(): Release {
    if (this.sessions >= this.maxSessions) throw this.refused(SESSION_CAP);
    const r = this.refusal();
    if (r) throw r;
    this.sessions++;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.sessions--;
    };
  }

  /**
   * {@link openSession}, and one adaptive slot taken at once for the
   * session's first response: the realtime upgrade's rule, "a session let
   * in holds one slot for its first response". Refused exactly when
   * `openSession` refuses (its checks found room, so the slot is taken in
   * the same synchronous turn; the upgrade never waits in the queue). The
   * `reservation` is a {@link Ticket}: the first response's stream takes it
   * over (`CallOptions.ticket`; the stream cap is still checked then), and
   * the session calls `reservation.release()` when it gives it back unused
   * (idempotent; a no-op once taken). Without an adaptive limit the ticket
   * holds no slot but still marks the first response as reserved. Call
   * `end` once when the session ends, as for `openSession`.
   */
  openReservedSession(): ReservedSession {
    const end = this.openSession();
    const c = this.opts.concurrency;
    return { end, reservation: new Ticket(c ? (c.enter() as Release) : undefined) };
  }

  /**
   * Admits one stream of `models` (the model and any per-request fallbacks)
   * for `principal`, or rejects with 403 / 429 (with Retry-After) / 503.
   * With a `ticket` that still holds its place (from {@link enter}), the
   * stream takes the ticket's slot over instead of asking for another (the
   * stream cap is still checked); without one, or with a spent one, it goes
   * through {@link enter}'s checks here.
   */
  admit(principal: Principal | undefined, models: readonly string[], ticket?: Ticket): Promise<Lease> {
    try {
      const now = this.admitNow(principal, models, ticket);
      return now !== undefined ? Promise.resolve(now) : this.admitLater(principal ?? ANONYMOUS, models, ticket);
    } catch (e) {
      // What was thrown, as the async function this replaces would reject with it.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(e);
    }
  }

  /**
   * {@link admit} when it needs no wait: the lease at once, or the refusal
   * thrown; `undefined` when admission must wait (the adaptive queue, or a
   * key with rpm / tpm / stream limits, checked in the limit store) — then
   * call {@link admit}, which does the same checks again. Nothing is taken
   * when it returns `undefined`. The engine's hot path: no promise per call.
   */
  admitNow(principal: Principal | undefined, models: readonly string[], ticket?: Ticket): Lease | undefined {
    const p = principal ?? ANONYMOUS;
    if (this.required && p.index < 0) {
      throw new SpillwayError(Code.Unauthenticated, "You didn't provide an API key.", { reason: "missing_api_key" });
    }
    const cfg = p.index >= 0 ? (p.key ?? this.keys[p.index]?.cfg) : undefined;
    if (cfg && (cfg.rpm !== undefined || cfg.tpm !== undefined || cfg.maxConcurrentStreams !== undefined)) return undefined;
    const t = this.entry(ticket);
    if (!t.holding && this.opts.concurrency) return undefined;
    const slot = t.holding ? t.take() : undefined;
    try {
      if (cfg) checkModels(cfg, models);
    } catch (e) {
      slot?.();
      throw e;
    }
    this.streams++;
    this.openByKey.set(p.name, (this.openByKey.get(p.name) ?? 0) + 1);
    return new KeyLease(this, p.name, slot);
  }

  /** {@link admit} that waits: in the adaptive queue, or on the limit store. */
  private async admitLater(p: Principal, models: readonly string[], ticket: Ticket | undefined): Promise<Lease> {
    const t = this.entry(ticket);
    const c = this.opts.concurrency;
    const slot = t.holding ? t.take() : c ? await this.queued(c.acquire()) : undefined;
    try {
      return await this.admitKey(p, models, slot);
    } catch (e) {
      slot?.();
      throw e;
    }
  }

  /**
   * Where an admission starts: a ticket already holding a slot (checked
   * against the stream cap), or a new entry — past capacity refused here,
   * before anything is counted (the key's limits included).
   */
  private entry(ticket: Ticket | undefined): Ticket {
    if (!ticket?.holding) return this.enter();
    if (this.streams >= this.maxStreams) throw this.refused(STREAM_CAP);
    return ticket;
  }

  /** A {@link KeyLease}'s release (an unlimited key's stream ended). */
  releaseKey(name: string, slot: Release | undefined): void {
    this.streams--;
    slot?.();
    this.openByKey.set(name, (this.openByKey.get(name) ?? 1) - 1);
  }

  private async admitKey(p: Principal, models: readonly string[], slot: Release | undefined): Promise<Lease> {
    const cfg = p.index >= 0 ? (p.key ?? this.keys[p.index]?.cfg) : undefined;
    const state = cfg ? { cfg } : undefined;
    if (state) checkModels(state.cfg, models);
    this.streams++;
    const limited = state && (state.cfg.rpm !== undefined || state.cfg.tpm !== undefined || state.cfg.maxConcurrentStreams !== undefined);
    const leaseId = limited ? randomUUID() : "";
    let counted = false;
    if (state && limited) {
      let rejection: LimitRejection | undefined;
      try {
        rejection = await this.store.admit(state.cfg.name, state.cfg, leaseId, this.opts.leaseTtlMs ?? 15 * 60_000);
        counted = rejection === undefined;
      } catch (e) {
        this.opts.onStoreError?.(e);
        if (!this.opts.failOpen) {
          this.streams--;
          throw new SpillwayError(Code.Unavailable, "Rate limits cannot be checked right now; try again shortly.", {
            reason: "limits_unavailable",
            retryAfterMs: 1000,
            httpStatus: 503,
            cause: e,
          });
        }
      }
      if (rejection) {
        this.streams--;
        throw rejectionError(state.cfg, rejection);
      }
    }
    let released = false;
    this.openByKey.set(p.name, (this.openByKey.get(p.name) ?? 0) + 1);
    return {
      release: (tokens) => {
        if (released) return;
        released = true;
        this.streams--;
        slot?.();
        this.openByKey.set(p.name, (this.openByKey.get(p.name) ?? 1) - 1);
        if (state && counted) this.store.release(state.cfg.name, leaseId, tokens).catch((e: unknown) => this.opts.onStoreError?.(e));
      },
    };
  }
}

/** The lease of a stream admitted at once ({@link Admission.admitNow}): a key without limits to tell the store of. Released once. */
class KeyLease implements Lease {
  private released = false;

  constructor(
    private readonly admission: Admission,
    private readonly name: string,
    private readonly slot: Release | undefined,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.admission.releaseKey(this.name, this.slot);
  }
}

function checkModels(cfg: GatewayKey, models: readonly string[]): void {
  if (!cfg.models) return;
  for (const m of models) {
    if (!cfg.models.some((p) => p === m || (p.endsWith("/*") && m.startsWith(p.slice(0, -1))))) {
      throw new SpillwayError(Code.PermissionDenied, `The API key '${cfg.name}' may not use the model '${m}'.`, {
        param: "model",
        reason: "model_not_allowed",
      });
    }
  }
}

function rejectionError(cfg: GatewayKey, r: LimitRejection): SpillwayError {
  const message =
    r.limit === "streams"
      ? `The API key '${cfg.name}' has ${cfg.maxConcurrentStreams} streams open, its limit.`
      : r.limit === "rpm"
        ? `Rate limit reached for '${cfg.name}': ${cfg.rpm} requests per minute.`
        : `Rate limit reached for '${cfg.name}': ${cfg.tpm} tokens per minute.`;
  return rateLimited(message, r.retryAfterMs);
}

function rateLimited(message: string, retryAfterMs: number): SpillwayError {
  return new SpillwayError(Code.ResourceExhausted, message, { reason: "rate_limit_exceeded", retryAfterMs, retryable: false });
}
