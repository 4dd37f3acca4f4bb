import { z } from "zod";

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().positive();

const openAiProvider = z.strictObject({
  type: z.literal("openai"),
  baseUrl: z.url(),
  apiKey: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  models: z.array(z.string().min(1)).optional(),
  timeoutMs: ms.optional(),
});

const anthropicProvider = z.strictObject({
  type: z.literal("anthropic"),
  baseUrl: z.url().default("https://api.anthropic.com"),
  apiKey: z.string().optional(),
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
    })
    .prefault({}),
  /** Providers by name: the name is the prefix of their model ids. */
  providers: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, "provider names are lower-case letters, digits, _ . -"), providerConfigSchema)
    .default({}),
  /** Bare model names mapped to `provider/model` ids. */
  aliases: z.record(z.string(), z.string().includes("/")).default({}),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** One validated provider configuration. */
export type ProviderConfig = z.infer<typeof providerConfigSchema>;
