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

const openAiProvider = z.strictObject({
  type: z.literal("openai"),
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
  baseUrl: z.url().default("https://api.anthropic.com"),
  apiKey: z.string().optional(),
  apiKeys,
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
  maxTokens: z.number().int().positive().default(4096),
});

const localProvider = z.strictObject({
  type: z.literal("local"),
  tokenDelayMs: z.number().int().min(0).max(10_000).default(20),
});

/** One provider's settings; `type` says which implementation serves it. */
export const providerConfigSchema = z.discriminatedUnion("type", [openAiProvider, anthropicProvider, localProvider]);

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
      /** Streams open at once across the gateway; more get 503. */
      maxConcurrentStreams: z.number().int().positive().default(10_000),
      /**
       * Shed load: while this process's event loop has been at least this busy
       * (0..1, e.g. 0.95) for half a second, new streams get 503 with Retry-After.
       * Off when absent.
       */
      maxEventLoopUtilization: z.number().gt(0).lte(1).optional(),
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
      /** Embedded log: chunk bytes held in all (oldest finished logs are evicted first). */
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
       * models from any providers). `local/realtime` is built in.
       */
      profiles: z
        .record(
          z.string().includes("/"),
          z.strictObject({
            stt: z.string().includes("/"),
            text: z.string().includes("/"),
            tts: z.string().includes("/"),
            voice: z.string().min(1).optional(),
            instructions: z.string().optional(),
          }),
        )
        .default({}),
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
    })
    .prefault({}),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** One validated provider configuration. */
export type ProviderConfig = z.infer<typeof providerConfigSchema>;
