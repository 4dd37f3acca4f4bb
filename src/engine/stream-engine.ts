import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  GenerateRequest,
  ModelInfo,
  SynthesizeRequest,
  TranscribeConfig,
} from "../gen/spillway/v1/request.js";
import { ActiveStream, type EngineStream, type StreamSummary } from "./active-stream.js";
import { Admission, type Lease, type Principal } from "./admission.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";
import type { ChunkPayload } from "./payload.js";
import type { Provider, ProviderContext } from "./provider.js";
import { canFallBack, retryDelay, type RetryOptions } from "./retry.js";
import type { Route, Router } from "./router.js";
import { createLinkedAbortController } from "./signals.js";
import { DurableStreams } from "./durable/durable-streams.js";
import { MemoryStreamLog } from "./durable/memory-stream-log.js";
import { Phase, publishPhase } from "./phase-channel.js";

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
}

/** Per-call options a door passes to the engine. */
export interface CallOptions {
  /** Aborts the call: the door's client went away. */
  readonly signal?: AbortSignal | undefined;
  /** Absolute deadline set by the client (epoch ms), e.g. a gRPC deadline. */
  readonly deadline?: number | undefined;
  /** Stream id to use; generated when absent. */
  readonly streamId?: string | undefined;
  /** The door's request id (the client's `x-request-id` or one made up), for providers' logs and upstream headers. */
  readonly requestId?: string | undefined;
  /** Who is calling (from the door's authentication). */
  readonly principal?: Principal | undefined;
  /** Model ids to try, in order, if the requested one fails before its first chunk. */
  readonly fallbacks?: readonly string[] | undefined;
  /** Called once when the stream this call opened ends (not for failed attempts). */
  readonly onStreamEnd?: ((summary: StreamSummary) => void) | undefined;
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
   * Streams a transcript of audio that arrives while the stream runs. The
   * audio cannot be replayed, so there are no retries or fallbacks.
   */
  transcribe(config: TranscribeConfig, audio: AsyncIterable<Uint8Array>, opts?: CallOptions): Promise<EngineStream>;
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

type Capability = "generate" | "synthesize" | "synthesizeStream" | "transcribe";
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
  async function attempt(route: Route, opts: CallOptions, lease: Lease, start: Start): Promise<EngineStream> {
    publishPhase(Phase.AttemptStarted);
    const id = opts.streamId ?? randomUUID().replaceAll("-", "");
    const controller = createLinkedAbortController(opts.signal, options.shutdownSignal);
    const deadline = Math.min(opts.deadline ?? Infinity, Date.now() + maxStreamMs);
    const labels: Record<string, string> = {};
    // The provider gets its context before the stream exists: `alive` reaches the stream through this.
    const ref: { stream?: ActiveStream } = {};
    const ctx: ProviderContext = { signal: controller.signal, deadline, streamId: id, requestId: opts.requestId ?? id, labels, alive: () => ref.stream?.touch() };
    let source: AsyncIterable<ChunkPayload>;
    try {
      source = start(route, ctx);
    } catch (e) {
      controller.cleanup();
      throw SpillwayError.from(e);
    }
    const stream = new ActiveStream(
      id,
      route,
      controller,
      source,
      { firstChunkMs: route.provider.timeoutMs ?? timeoutMs, idleMs: idleTimeoutMs, deadline },
      labels,
      (summary) => {
        // A failed attempt that will be retried is not the end of the call.
        if (summary.firstChunkAt === undefined && summary.outcome !== "ok") return;
        lease.release(summary.usage.totalTokens);
        options.onStreamEnd?.(summary);
        opts.onStreamEnd?.(summary);
      },
    );
    ref.stream = stream;
    await stream.prime();
    return stream;
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
    // Admission first: a key learns nothing about models it may not use.
    const lease = await admission.admit(opts.principal, models);
    let routes: Array<Route | undefined>;
    try {
      routes = resolveAll(models, capability);
    } catch (e) {
      lease.release(0);
      throw e;
    }
    let lastError: SpillwayError | undefined;
    let previous: Route | undefined;
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
            const stream = await attempt(route, opts, lease, start);
            breaker.success(name);
            return stream;
          } catch (e) {
            const err = SpillwayError.from(e);
            if (opts.signal?.aborted || options.shutdownSignal?.aborted) throw err;
            if (!canFallBack(err)) throw err;
            // Only failures of the provider itself count against its circuit,
            // not an upstream's refusal of one model or key.
            if (err.retryable) breaker.failure(name);
            lastError = err;
            const delay = err.retryable && n < maxAttempts && routing ? retryDelay(n, err, routing) : undefined;
            const retrying = delay !== undefined && (opts.deadline === undefined || Date.now() + delay < opts.deadline);
            options.onAttemptFailed?.(route, err, retrying);
            if (!retrying) break;
            await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
            if (opts.signal?.aborted) throw SpillwayError.from(opts.signal.reason);
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
    return [model, ...(opts.fallbacks ?? routing?.fallbacks[model] ?? [])];
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
      return openWithFailover(candidates(req.model, opts), "generate", opts, (r, ctx) => r.provider.generate!(r.model, req, ctx), true);
    },
    synthesize(req, opts = {}) {
      return openWithFailover(candidates(req.model, opts), "synthesize", opts, (r, ctx) => r.provider.synthesize!(r.model, req, ctx), true);
    },
    synthesizeStream(req, text, opts = {}) {
      return openWithFailover([req.model], "synthesizeStream", opts, (r, ctx) => r.provider.synthesizeStream!(r.model, req, text, ctx), false);
    },
    transcribe(config, audio, opts = {}) {
      return openWithFailover([config.model], "transcribe", opts, (r, ctx) => r.provider.transcribe!(r.model, config, audio, ctx), false);
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
