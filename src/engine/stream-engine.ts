import { setTimeout as sleep } from "node:timers/promises";
import type {
  GenerateRequest,
  ModelInfo,
  SynthesizeRequest,
  TranscribeConfig,
} from "../gen/spillway/v1/request.js";
import { ActiveStream, type EngineStream, type StreamSummary } from "./active-stream.js";
import { Admission, type Lease, type Principal, type Ticket } from "./admission.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";
import { emptyUsage, type ChunkPayload } from "./payload.js";
import type { Provider, ProviderContext } from "./provider.js";
import type { ProviderSession } from "./provider-session.js";
import { canFallBack, retryDelay, type RetryOptions } from "./retry.js";
import type { Route, Router } from "./router.js";
import { createAbortGroup, type AbortSource, type LinkedAbortController } from "./signals.js";
import { streamIdHex } from "./stream-id.js";
import { DurableStreams } from "./durable/durable-streams.js";
import { MemoryStreamLog } from "./durable/memory-stream-log.js";
import { Phase, publishPhase } from "./phase-channel.js";
import type { CacheMode, EngineCache } from "./cache/engine-cache.js";

/**
 * The audio of a transcription: an iterable read as it arrives (one pass),
 * or pieces held whole in memory (replayable: see `StreamEngine.transcribe`).
 */
export type TranscribeAudio = AsyncIterable<Uint8Array> | readonly Uint8Array[];

function isHeld(audio: TranscribeAudio): audio is readonly Uint8Array[] {
  return Array.isArray(audio);
}

/** Held pieces as a fresh one-pass iterable, for one attempt. */
function replay(pieces: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        next: () => Promise.resolve(i < pieces.length ? { done: false, value: pieces[i++]! } : { done: true, value: undefined }),
        return: () => {
          i = pieces.length;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}

/** Retries, fallbacks and circuit breaking. */
export interface RoutingOptions extends RetryOptions {
  /** Fallback model ids per model id. */
  readonly fallbacks: Readonly<Record<string, readonly string[]>>;
  readonly breakerThreshold: number;
  readonly breakerCooldownMs: number;
}

/** Settings of a {@link StreamEngine}. */
export interface StreamEngineOptions {
  readonly router: Router;
  /** Default time from request to first chunk, per provider call (ms). Default 30 000. */
  readonly timeoutMs?: number;
  /** Longest silence between two chunks while the door waits (ms). Default 30 000. */
  readonly idleTimeoutMs?: number;
  /** Longest a whole stream may last (ms). Default 600 000. */
  readonly maxStreamMs?: number;
  /** Retries and fallbacks; none when absent. */
  readonly routing?: RoutingOptions;
  /** Gateway keys and limits; an open gateway without limits when absent. */
  readonly admission?: Admission;
  /** Aborts every stream when the server shuts down for good. */
  readonly shutdownSignal?: AbortSignal;
  /** Called once per stream when it ends, however it ends. */
  readonly onStreamEnd?: (summary: StreamSummary) => void;
  /** Called when an attempt fails before its first chunk (`retrying`: the same provider is tried again). */
  readonly onAttemptFailed?: (route: Route, error: SpillwayError, retrying: boolean) => void;
  /** Called when a call moves on to a fallback model. */
  readonly onFallback?: (from: Route, to: Route) => void;
  /** Stored streams; an embedded log with default bounds when absent. */
  readonly streams?: DurableStreams;
  /**
   * Observes every attempt (tracing): called as an attempt starts, before its
   * provider is; the function it returns is called once when the attempt ends,
   * however it ends (failed before its first chunk, or the stream's end).
   * Nothing is done per attempt when absent.
   */
  readonly onAttempt?: ((attempt: AttemptInfo) => ((summary: StreamSummary) => void) | undefined) | undefined;
  /** The response cache around `generate` and `synthesize` (src/engine/cache); none when absent. */
  readonly cache?: EngineCache | undefined;
  /**
   * Whether a call that names no cache mode uses the cache (`use`) or not
   * (`bypass`), by caller: per-key opt-in. Always `use` when absent.
   */
  readonly cacheByDefault?: ((principal: Principal | undefined) => boolean) | undefined;
}

/** One attempt of a call, as {@link StreamEngineOptions.onAttempt} sees it. */
export interface AttemptInfo {
  readonly capability: Capability;
  readonly route: Route;
  readonly call: CallOptions;
  /** The provider's context (its `signal` is the one passed to every upstream request of the attempt). */
  readonly ctx: ProviderContext;
  /** 1 for the call's first attempt, counting retries and fallbacks. */
  readonly attempt: number;
  /** True when the attempt replays a cached stream. */
  readonly cached: boolean;
}

/** Per-call options a door passes to the engine. */
export interface CallOptions {
  /** Aborts the call: the door's client went away. */
  readonly signal?: AbortSignal | undefined;
  /** Also aborts the call, without an AbortSignal (cheaper; the HTTP exchange is one). */
  readonly abortSource?: AbortSource | undefined;
  /** Absolute deadline set by the client (epoch ms), e.g. a gRPC deadline. */
  readonly deadline?: number | undefined;
  /** Stream id to use; generated when absent. */
  readonly streamId?: string | undefined;
  /** The door's request id (the client's `x-request-id` or one made up), for providers' logs and upstream headers. */
  readonly requestId?: string | undefined;
  /** Who is calling (from the door's authentication). */
  readonly principal?: Principal | undefined;
  /**
   * The place the door took when the request arrived (`admission.enter()`):
   * the call's stream takes its slot over instead of asking for another.
   * Without one (or once spent) the call is admitted from scratch.
   */
  readonly ticket?: Ticket | undefined;
  /** Model ids to try, in order, if the requested one fails before its first chunk. */
  readonly fallbacks?: readonly string[] | undefined;
  /**
   * Called once the call is admitted and its models resolved, before the
   * first attempt, with the upstream model it tries first: what is left is
   * waiting for the upstream (a background response is `queued` until
   * then). Not called when the call is refused.
   */
  readonly onAdmitted?: ((model: string) => void) | undefined;
  /** Called once when the stream this call opened ends (not for failed attempts). */
  readonly onStreamEnd?: ((summary: StreamSummary) => void) | undefined;
  /** The W3C `traceparent` of the door's span for this call (tracing on), the parent of each attempt's span. */
  readonly traceparent?: string | undefined;
  /** How the response cache treats this call (when the engine has one): `use` (default), `refresh`, `bypass`. */
  readonly cache?: CacheMode | undefined;
  /** The door session the call belongs to, passed to the provider (`ProviderContext.session`). */
  readonly session?: ProviderSession | undefined;
}

/**
 * The core of Spillway: admits a call, routes it to its provider (with
 * retries and fallbacks before the first chunk) and hands the door a primed
 * {@link EngineStream}. Each method resolves once the first chunk is there,
 * and rejects with a SpillwayError when the call fails before it, so the
 * door can answer with a real status; later failures arrive in-band.
 */
export interface StreamEngine {
  /** The router in force (a reload replaces it; calls in progress keep the one they started with). */
  readonly router: Router;
  /** Gateway keys and limits (doors authenticate callers with it). */
  readonly admission: Admission;
  /** Streams text for a chat or prompt. */
  generate(req: GenerateRequest, opts?: CallOptions): Promise<EngineStream>;
  /** Streams synthesized speech. */
  synthesize(req: SynthesizeRequest, opts?: CallOptions): Promise<EngineStream>;
  /**
   * Streams speech for text that arrives while the stream runs (a text
   * model's reply as it is written). The text cannot be replayed, so there
   * are no retries or fallbacks. Fails with `InvalidArgument` (param
   * `model`) when the model's provider has no `synthesizeStream`.
   */
  synthesizeStream(req: SynthesizeRequest, text: AsyncIterable<string>, opts?: CallOptions): Promise<EngineStream>;
  /**
   * Streams a transcript of `audio`. Audio that arrives while the stream
   * runs (an iterable) cannot be replayed, so there are no retries or
   * fallbacks. Audio held whole in memory (an array of pieces: a file that
   * waited for the end of its form) can: each attempt reads it again, with
   * the retries and fallbacks of a text call. `completed`: the request as
   * completed after the audio began, handed to the provider (see
   * `Provider.transcribe`).
   */
  transcribe(config: TranscribeConfig, audio: TranscribeAudio, opts?: CallOptions, completed?: Promise<TranscribeConfig>): Promise<EngineStream>;
  /** Every model of every provider; a provider that fails to list is skipped. */
  listModels(signal?: AbortSignal): Promise<ModelInfo[]>;
  /** Whether a provider's circuit is open (it is being skipped). */
  isCircuitOpen(provider: string): boolean;
  /** Stored streams: record, follow, cancel, delete (see {@link DurableStreams}). */
  readonly streams: DurableStreams;
  /**
   * Applies new settings (config reload) to calls that start from now on:
   * router (providers, aliases), timeouts, retries and fallbacks. Streams in
   * progress finish with the provider and settings they started with.
   */
  reconfigure(next: EngineSettings): void;
}

/** The settings of a {@link StreamEngine} that a config reload may change. */
export type EngineSettings = Pick<StreamEngineOptions, "router" | "timeoutMs" | "idleTimeoutMs" | "maxStreamMs" | "routing">;

/** What a call asks of its provider. */
export type Capability = "generate" | "synthesize" | "synthesizeStream" | "transcribe";
type Start = (route: Route, ctx: ProviderContext) => AsyncIterable<ChunkPayload>;

const capabilityText: Record<Capability, string> = {
  generate: "text generation",
  synthesize: "speech synthesis",
  synthesizeStream: "speech synthesis from streamed text",
  transcribe: "transcription",
};

/** Creates the engine. */
export function createStreamEngine(options: StreamEngineOptions): StreamEngine {
  let timeoutMs = options.timeoutMs ?? 30_000;
  let idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  let maxStreamMs = options.maxStreamMs ?? 600_000;
  let routing = options.routing;
  const admission = options.admission ?? new Admission([], { maxConcurrentStreams: Infinity });
  const newBreaker = (): CircuitBreaker =>
    new CircuitBreaker({
      threshold: routing?.breakerThreshold ?? Infinity,
      cooldownMs: routing?.breakerCooldownMs ?? 30_000,
    });
  let breaker = newBreaker();
  let { router } = options;
  // Every attempt's controller aborts on shutdown through one listener, not one per attempt.
  const shutdown = createAbortGroup(options.shutdownSignal);

  function resolve(modelId: string, capability: Capability): Route {
    if (!modelId) {
      throw new SpillwayError(Code.InvalidArgument, "you must provide a model parameter", {
        param: "model",
        reason: "missing_required_parameter",
      });
    }
    const route = router.resolve(modelId);
    if (!route.provider[capability]) {
      throw new SpillwayError(Code.InvalidArgument, `The model '${modelId}' does not support ${capabilityText[capability]}.`, {
        param: "model",
        reason: "model_not_supported",
      });
    }
    return route;
  }

  /** Opens one attempt on one route: resolves once the first chunk is there. */
  function attempt(route: Route, opts: CallOptions, lease: Lease, start: Start, capability: Capability, n: number, cached = false): Promise<EngineStream> {
    publishPhase(Phase.AttemptStarted);
    const id = opts.streamId ?? streamIdHex();
    const controller = shutdown.linkWith(opts.abortSource, opts.signal);
    const deadline = Math.min(opts.deadline ?? Infinity, Date.now() + maxStreamMs);
    // The provider gets its context before the stream exists: `alive` reaches the stream through it.
    const ctx = new AttemptContext(controller, deadline, id, opts.requestId ?? id, opts.session);
    const observed = options.onAttempt?.({ capability, route, call: opts, ctx, attempt: n, cached });
    let source: AsyncIterable<ChunkPayload>;
    try {
      source = start(route, ctx);
    } catch (e) {
      controller.cleanup();
      const err = SpillwayError.from(e);
      if (observed) {
        const now = performance.now();
        observed({ id, route, labels: ctx.labels, outcome: err, finishReason: undefined, usage: emptyUsage(), chunks: 0, startedAt: now, firstChunkAt: undefined, endedAt: now });
      }
      return Promise.reject(err);
    }
    const stream = new ActiveStream(
      id,
      route,
      controller,
      source,
      { firstChunkMs: route.provider.timeoutMs ?? timeoutMs, idleMs: idleTimeoutMs, deadline },
      ctx.labels,
      new AttemptEnd(observed, lease, options.onStreamEnd, opts.onStreamEnd),
    );
    ctx.stream = stream;
    return stream.prime().then(() => stream);
  }

  /** Resolves every candidate: a bad primary model is the client's error, a bad fallback is skipped. */
  function resolveAll(models: readonly string[], capability: Capability): Array<Route | undefined> {
    return models.map((m, i) => {
      try {
        return resolve(m, capability);
      } catch (e) {
        if (i === 0) throw e;
        return undefined;
      }
    });
  }

  /**
   * Tries `models` in order; each with up to `maxAttempts` attempts for a
   * retryable failure, honouring Retry-After, skipping providers whose
   * circuit is open. Only failures before the first chunk get here, so a
   * client never sees two streams mixed.
   */
  async function openWithFailover(models: readonly string[], capability: Capability, opts: CallOptions, start: Start, replayable: boolean): Promise<EngineStream> {
    // Admission first: a key learns nothing about models it may not use. At once when nothing needs a wait (no promise to await).
    const lease = admission.admitNow(opts.principal, models, opts.ticket) ?? (await admission.admit(opts.principal, models, opts.ticket));
    let routes: Array<Route | undefined>;
    try {
      routes = resolveAll(models, capability);
    } catch (e) {
      lease.release(0);
      throw e;
    }
    opts.onAdmitted?.(routes.find((r) => r)?.model ?? models[0]!);
    let lastError: SpillwayError | undefined;
    let previous: Route | undefined;
    let attempts = 0;
    try {
      for (const route of routes) {
        if (!route) continue;
        if (previous) options.onFallback?.(previous, route);
        previous = route;
        const name = route.provider.name;
        const maxAttempts = replayable ? (routing?.maxAttempts ?? 1) : 1;
        for (let n = 1; n <= maxAttempts; n++) {
          if (!breaker.allow(name)) {
            lastError ??= new SpillwayError(Code.Unavailable, `${name}: skipped, failing repeatedly (circuit open)`, {
              httpStatus: 503,
              reason: "provider_unavailable",
            });
            break;
          }
          try {
            const stream = await attempt(route, opts, lease, start, capability, ++attempts);
            breaker.success(name);
            return stream;
          } catch (e) {
            const err = SpillwayError.from(e);
            if (opts.signal?.aborted || opts.abortSource?.aborted || options.shutdownSignal?.aborted) throw err;
            if (!canFallBack(err)) throw err;
            // Only failures of the provider itself count against its circuit,
            // not an upstream's refusal of one model or key, nor this process's own overload.
            if (err.retryable && err.reason !== "server_overloaded") breaker.failure(name);
            lastError = err;
            const delay = err.retryable && n < maxAttempts && routing ? retryDelay(n, err, routing) : undefined;
            const retrying = delay !== undefined && (opts.deadline === undefined || Date.now() + delay < opts.deadline);
            options.onAttemptFailed?.(route, err, retrying);
            if (!retrying) break;
            const client = opts.signal ?? opts.abortSource?.signal;
            await sleep(delay, undefined, client ? { signal: client } : {}).catch(() => undefined);
            if (client?.aborted) throw SpillwayError.from(client.reason);
          }
        }
      }
    } catch (e) {
      lease.release(0);
      throw e;
    }
    lease.release(0);
    throw lastError ?? new SpillwayError(Code.Unavailable, "no provider could serve the request");
  }

  function candidates(model: string, opts: CallOptions): string[] {
    const configured = routing && Object.hasOwn(routing.fallbacks, model) ? routing.fallbacks[model] : undefined;
    const more = opts.fallbacks ?? configured;
    // No fallbacks (the common case): a one-element array, not a spread of an empty one.
    return more === undefined || more.length === 0 ? [model] : [model, ...more];
  }

  /**
   * A call through the response cache: `use` replays a stored stream when
   * there is one, else (and with `refresh`) opens the call live and stores it
   * if it completes; `bypass` or no cache opens it live, untouched. The key is
   * the request with its model resolved (aliases), so two spellings of one
   * model share entries. A hit is admitted like any call (allow-list, rpm,
   * streams) and charges no tokens.
   */
  function throughCache(capability: "generate" | "synthesize", req: GenerateRequest | SynthesizeRequest, opts: CallOptions, start: Start): Promise<EngineStream> {
    const cache = options.cache;
    let models: string[];
    let mode: CacheMode;
    try {
      models = candidates(req.model, opts);
      mode = opts.cache ?? (options.cacheByDefault && !options.cacheByDefault(opts.principal) ? "bypass" : "use");
    } catch (e) {
      // What was thrown, as the async function this replaces would reject with it.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(e);
    }
    // No cache: the live call's own promise, not one more async frame around it (the common case, per request).
    if (!cache || mode === "bypass") return openWithFailover(models, capability, opts, start, true);
    return cachedCall(cache, mode, models, capability, req, opts, start);
  }

  /** {@link throughCache} with a cache in use (`use` or `refresh`). */
  async function cachedCall(
    cache: EngineCache,
    mode: CacheMode,
    models: string[],
    capability: "generate" | "synthesize",
    req: GenerateRequest | SynthesizeRequest,
    opts: CallOptions,
    start: Start,
  ): Promise<EngineStream> {
    let key: string;
    try {
      key = cache.keyOf(capability, req, router.resolve(req.model).id);
    } catch {
      // An unknown model: the live path refuses it (after admission).
      return openWithFailover(models, capability, opts, start, true);
    }
    if (mode === "use") {
      const hit = await cache.get(key);
      if (hit) {
        let route: Route | undefined;
        try {
          route = resolve(hit.routeId, capability);
        } catch {
          route = undefined;
        }
        if (route) {
          const lease = await admission.admit(opts.principal, [req.model], opts.ticket);
          const free: Lease = { release: () => lease.release(0) };
          opts.onAdmitted?.(route.model);
          try {
            return await attempt(route, opts, free, (_r, ctx) => cache.replay(hit, ctx), capability, 1, true);
          } catch (e) {
            lease.release(0);
            throw e;
          }
        }
      }
    }
    return cache.record(key, await openWithFailover(models, capability, opts, start, true));
  }

  return {
    get router() {
      return router;
    },
    admission,
    reconfigure(next) {
      const breakerChanged =
        next.routing?.breakerThreshold !== routing?.breakerThreshold || next.routing?.breakerCooldownMs !== routing?.breakerCooldownMs;
      router = next.router;
      timeoutMs = next.timeoutMs ?? 30_000;
      idleTimeoutMs = next.idleTimeoutMs ?? 30_000;
      maxStreamMs = next.maxStreamMs ?? 600_000;
      routing = next.routing;
      if (breakerChanged) breaker = newBreaker();
    },
    generate(req, opts = {}) {
      if (req.messages.length === 0 && !req.prompt) {
        return Promise.reject(
          new SpillwayError(Code.InvalidArgument, "messages must not be empty", { param: "messages", reason: "missing_required_parameter" }),
        );
      }
      return throughCache("generate", req, opts, (r, ctx) => r.provider.generate!(r.model, req, ctx));
    },
    synthesize(req, opts = {}) {
      return throughCache("synthesize", req, opts, (r, ctx) => r.provider.synthesize!(r.model, req, ctx));
    },
    synthesizeStream(req, text, opts = {}) {
      return openWithFailover([req.model], "synthesizeStream", opts, (r, ctx) => r.provider.synthesizeStream!(r.model, req, text, ctx), false);
    },
    transcribe(config, audio, opts = {}, completed) {
      if (isHeld(audio)) {
        const pieces = audio;
        return openWithFailover(candidates(config.model, opts), "transcribe", opts, (r, ctx) => r.provider.transcribe!(r.model, config, replay(pieces), ctx, completed), true);
      }
      return openWithFailover([config.model], "transcribe", opts, (r, ctx) => r.provider.transcribe!(r.model, config, audio, ctx, completed), false);
    },
    async listModels(signal) {
      const lists = await Promise.allSettled(router.providers.map((p) => p.listModels(signal)));
      return lists.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    },
    isCircuitOpen: (provider) => breaker.isOpen(provider),
    streams: options.streams ?? new DurableStreams({ log: new MemoryStreamLog(), maxStreamMs }),
  };
}

export type { EngineStream, StreamSummary };
export type { Provider };

/**
 * One attempt's {@link ProviderContext}: a class, not an object literal — a
 * literal with a getter is made in dictionary mode with its own accessor
 * pair and closure per attempt (the attempt was the largest allocator of a
 * non-streamed request). `signal` is made when a provider first reads it (one
 * that takes `abortSource` makes none); `alive` when first read (a whole
 * answer never reads it).
 */
class AttemptContext implements ProviderContext {
  /** Labels the provider sets (`key`). */
  readonly labels: Record<string, string> = {};
  /** The attempt's stream, once made (`alive` reaches it through this). */
  stream: ActiveStream | undefined = undefined;
  /** An own property, as it was on the object literal (a spread of the context keeps it); every upstream reader takes it. */
  readonly abortSource: AbortSource;
  private touch: (() => void) | undefined = undefined;

  constructor(
    private readonly controller: LinkedAbortController,
    readonly deadline: number,
    readonly streamId: string,
    readonly requestId: string,
    readonly session: ProviderSession | undefined,
  ) {
    this.abortSource = controller.source;
  }

  /** Made when first read. A getter on the prototype: a spread of the context (`{ ...ctx }`) does not copy it — set `signal` in the copy, as the Deepgram session does. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Made when first read (a prototype getter, as `signal`). */
  get alive(): () => void {
    return (this.touch ??= touchOf(this));
  }
}

/** `ProviderContext.alive` of an attempt: made by a function so that it is an anonymous arrow (no `__name` under tsx). */
function touchOf(ctx: AttemptContext): () => void {
  return () => ctx.stream?.touch();
}

/**
 * What runs when an attempt's stream ends (the {@link ActiveStream}'s
 * `onEnd`), as an object rather than a closure per attempt: the attempt's
 * observer (tracing), then — unless it failed before its first chunk, when
 * the call may try again — the lease's release and the engine's and the
 * call's `onStreamEnd`.
 */
class AttemptEnd {
  constructor(
    private readonly observed: ((summary: StreamSummary) => void) | undefined,
    private readonly lease: Lease,
    private readonly engineEnd: ((summary: StreamSummary) => void) | undefined,
    private readonly callEnd: ((summary: StreamSummary) => void) | undefined,
  ) {}

  ended(summary: StreamSummary): void {
    this.observed?.(summary);
    // A failed attempt that will be retried is not the end of the call.
    if (summary.firstChunkAt === undefined && summary.outcome !== "ok") return;
    this.lease.release(summary.usage.totalTokens);
    this.engineEnd?.(summary);
    this.callEnd?.(summary);
  }
}
