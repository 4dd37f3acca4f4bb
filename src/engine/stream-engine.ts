import { randomUUID } from "node:crypto";
import type {
  GenerateRequest,
  ModelInfo,
  SynthesizeRequest,
  TranscribeConfig,
} from "../gen/spillway/v1/request.js";
import { ActiveStream, type EngineStream, type StreamSummary } from "./active-stream.js";
import { Code } from "./code.js";
import { SpillwayError } from "./errors.js";
import type { ChunkPayload } from "./payload.js";
import type { Provider, ProviderContext } from "./provider.js";
import type { Route, Router } from "./router.js";
import { createLinkedAbortController } from "./signals.js";

/** Settings of a {@link StreamEngine}. */
export interface StreamEngineOptions {
  readonly router: Router;
  /** Default time from request to first chunk, per provider call (ms). Default 30 000. */
  readonly timeoutMs?: number;
  /** Longest silence between two chunks while the door waits (ms). Default 30 000. */
  readonly idleTimeoutMs?: number;
  /** Longest a whole stream may last (ms). Default 600 000. */
  readonly maxStreamMs?: number;
  /** Aborts every stream when the server shuts down for good. */
  readonly shutdownSignal?: AbortSignal;
  /** Called once per stream when it ends, however it ends. */
  readonly onStreamEnd?: (summary: StreamSummary) => void;
}

/** Per-call options a door passes to the engine. */
export interface CallOptions {
  /** Aborts the call: the door's client went away. */
  readonly signal?: AbortSignal | undefined;
  /** Absolute deadline set by the client (epoch ms), e.g. a gRPC deadline. */
  readonly deadline?: number | undefined;
  /** Stream id to use; generated when absent. */
  readonly streamId?: string | undefined;
}

/**
 * The core of Spillway: routes a request to its provider and hands the door a
 * primed {@link EngineStream}. Each method resolves once the first chunk is
 * there, and rejects with a SpillwayError when the call fails before it, so
 * the door can answer with a real status; later failures arrive in-band.
 */
export interface StreamEngine {
  readonly router: Router;
  /** Streams text for a chat or prompt. */
  generate(req: GenerateRequest, opts?: CallOptions): Promise<EngineStream>;
  /** Streams synthesized speech. */
  synthesize(req: SynthesizeRequest, opts?: CallOptions): Promise<EngineStream>;
  /** Streams a transcript of audio that arrives while the stream runs. */
  transcribe(
    config: TranscribeConfig,
    audio: AsyncIterable<Uint8Array>,
    opts?: CallOptions,
  ): Promise<EngineStream>;
  /** Every model of every provider; a provider that fails to list is skipped. */
  listModels(signal?: AbortSignal): Promise<ModelInfo[]>;
}

type Capability = "generate" | "synthesize" | "transcribe";
const capabilityText: Record<Capability, string> = {
  generate: "text generation",
  synthesize: "speech synthesis",
  transcribe: "transcription",
};

/** Creates the engine. */
export function createStreamEngine(options: StreamEngineOptions): StreamEngine {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const maxStreamMs = options.maxStreamMs ?? 600_000;
  const { router } = options;

  function resolve(modelId: string, capability: Capability): Route {
    if (!modelId) {
      throw new SpillwayError(Code.InvalidArgument, "you must provide a model parameter", {
        param: "model",
        openAiCode: "missing_required_parameter",
      });
    }
    const route = router.resolve(modelId);
    if (!route.provider[capability]) {
      throw new SpillwayError(
        Code.InvalidArgument,
        `The model '${modelId}' does not support ${capabilityText[capability]}.`,
        { param: "model", openAiCode: "model_not_supported" },
      );
    }
    return route;
  }

  async function open(
    route: Route,
    opts: CallOptions,
    start: (ctx: ProviderContext) => AsyncIterable<ChunkPayload>,
  ): Promise<EngineStream> {
    const id = opts.streamId ?? randomUUID().replaceAll("-", "");
    const controller = createLinkedAbortController(opts.signal, options.shutdownSignal);
    const deadline = Math.min(opts.deadline ?? Infinity, Date.now() + maxStreamMs);
    const ctx: ProviderContext = { signal: controller.signal, deadline, streamId: id };
    let source: AsyncIterable<ChunkPayload>;
    try {
      source = start(ctx);
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
      options.onStreamEnd,
    );
    await stream.prime();
    return stream;
  }

  return {
    router,
    async generate(req, opts = {}) {
      const route = resolve(req.model, "generate");
      if (req.messages.length === 0 && !req.prompt) {
        throw new SpillwayError(Code.InvalidArgument, "messages must not be empty", {
          param: "messages",
          openAiCode: "missing_required_parameter",
        });
      }
      return open(route, opts, (ctx) => route.provider.generate!(route.model, req, ctx));
    },
    async synthesize(req, opts = {}) {
      const route = resolve(req.model, "synthesize");
      return open(route, opts, (ctx) => route.provider.synthesize!(route.model, req, ctx));
    },
    async transcribe(config, audio, opts = {}) {
      const route = resolve(config.model, "transcribe");
      return open(route, opts, (ctx) => route.provider.transcribe!(route.model, config, audio, ctx));
    },
    async listModels(signal) {
      const lists = await Promise.allSettled(router.providers.map((p) => p.listModels(signal)));
      return lists.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    },
  };
}

export type { EngineStream, StreamSummary };
export type { Provider };
