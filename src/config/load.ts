import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { configSchema, type Config } from "./schema.js";

/** A configuration that cannot be used; the message names the field at fault. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;
type Raw = Record<string, unknown>;

function section(raw: Raw, key: string): Raw {
  const v = raw[key];
  if (v === undefined) return (raw[key] = {});
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config: '${key}' must be an object`);
  return v as Raw;
}

function intFromEnv(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ConfigError(`environment: ${name} must be an integer, got '${v}'`);
  return n;
}

/**
 * Applies the environment on top of the file's settings: `PORT`, `HOST`,
 * `GRPC_PORT`, `OPENAI_API_KEY` / `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY` /
 * `ANTHROPIC_BASE_URL` (as the official SDKs read them), `DEEPGRAM_API_KEY` /
 * `DEEPGRAM_BASE_URL`, `ELEVENLABS_API_KEY` / `ELEVENLABS_BASE_URL`, the
 * Google variables of {@link applyGoogleEnv}, and
 * `SPILLWAY_LOCAL_TOKEN_DELAY_MS`, `REDIS_URL`, `SPILLWAY_TLS_CERT` / `SPILLWAY_TLS_KEY`
 * (HTTPS and WSS on the HTTP port), and the `OTEL_*` exporter variables (see `applyOtelEnv`). An `openai`, `anthropic`, `deepgram` or `elevenlabs` provider is
 * added only when its key or base URL is set; `local` is always there.
 */
export function applyEnv(raw: Raw, env: Env): Raw {
  const http = section(raw, "http");
  const grpc = section(raw, "grpc");
  const providers = section(raw, "providers");
  const httpPort = intFromEnv(env, "PORT");
  if (httpPort !== undefined) http["port"] = httpPort;
  if (env["HOST"]) http["host"] = env["HOST"];
  if (env["SPILLWAY_TLS_CERT"] || env["SPILLWAY_TLS_KEY"]) {
    http["tls"] = { ...(http["tls"] as Raw | undefined), certFile: env["SPILLWAY_TLS_CERT"], keyFile: env["SPILLWAY_TLS_KEY"] };
  }
  const grpcPort = intFromEnv(env, "GRPC_PORT");
  if (grpcPort !== undefined) grpc["port"] = grpcPort;

  if (env["REDIS_URL"]) raw["redis"] = { ...(raw["redis"] as Raw | undefined), url: env["REDIS_URL"] };

  applyOtelEnv(raw, env);

  const local = (providers["local"] ??= { type: "local" }) as Raw;
  const delay = intFromEnv(env, "SPILLWAY_LOCAL_TOKEN_DELAY_MS");
  if (delay !== undefined && local["type"] === "local") local["tokenDelayMs"] = delay;

  for (const [name, type, keyVar, urlVar, defaultUrl] of [
    ["openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"],
    ["anthropic", "anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"],
    ["deepgram", "deepgram", "DEEPGRAM_API_KEY", "DEEPGRAM_BASE_URL", "https://api.deepgram.com"],
    ["elevenlabs", "elevenlabs", "ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "https://api.elevenlabs.io"],
  ] as const) {
    const key = env[keyVar];
    const url = env[urlVar];
    if (!key && !url) continue;
    const p = (providers[name] ??= { type, baseUrl: defaultUrl }) as Raw;
    if (key) p["apiKey"] = key;
    if (url) p["baseUrl"] = url;
  }
  applyCloudEnv(providers, env);
  applyGoogleEnv(providers, env);
  return raw;
}

/**
 * The standard OpenTelemetry exporter variables, on top of the file's
 * `tracing`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`), `OTEL_EXPORTER_OTLP_HEADERS`
 * / `_TRACES_HEADERS` (`k=v,k2=v2`, URL-encoded values), `OTEL_SERVICE_NAME`.
 * Only `http/protobuf` is spoken: another `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`
 * is refused; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns tracing off.
 */
function applyOtelEnv(raw: Raw, env: Env): void {
  const base = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  const traces = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];
  const headers = env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] ?? env["OTEL_EXPORTER_OTLP_HEADERS"];
  const service = env["OTEL_SERVICE_NAME"];
  const disabled = env["OTEL_SDK_DISABLED"]?.toLowerCase() === "true" || env["OTEL_TRACES_EXPORTER"]?.toLowerCase() === "none";
  if (!base && !traces && !headers && !service && !disabled) return;
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const v = env[name];
    if (v && v !== "http/protobuf") throw new ConfigError(`environment: ${name} must be 'http/protobuf' (the only OTLP protocol Spillway exports), got '${v}'`);
  }
  const tracing = section(raw, "tracing");
  if (traces) tracing["endpoint"] = traces;
  else if (base) tracing["endpoint"] = `${base.replace(/\/+$/, "")}/v1/traces`;
  if (headers) {
    const parsed: Record<string, string> = { ...(tracing["headers"] as Record<string, string> | undefined) };
    for (const pair of headers.split(",")) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new ConfigError(`environment: OTEL_EXPORTER_OTLP_HEADERS must be 'name=value' pairs separated by commas, got '${pair.trim()}'`);
      parsed[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
    }
    tracing["headers"] = parsed;
  }
  if (service) tracing["serviceName"] = service;
  if (disabled) delete tracing["endpoint"];
}

/**
 * Fills cloud providers' settings from the variables their vendors' SDKs
 * read: Bedrock's `region` from `AWS_REGION` (or `AWS_DEFAULT_REGION`) and
 * its endpoint from `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` (or
 * `AWS_ENDPOINT_URL`) and its control plane's from `AWS_ENDPOINT_URL_BEDROCK`, where the file leaves them out. Credentials are
 * found by AWS's default chain at call time, not here. Azure, as the
 * openai SDK's `AzureOpenAI` reads them: an `azure` provider is added when
 * `AZURE_OPENAI_ENDPOINT` is set (with `AZURE_OPENAI_API_KEY`), and
 * `OPENAI_API_VERSION` is the `apiVersion` of Azure providers that set none.
 */
function applyCloudEnv(providers: Raw, env: Env): void {
  const endpoint = env["AZURE_OPENAI_ENDPOINT"];
  if (endpoint) {
    const p = (providers["azure"] ??= { type: "azure" }) as Raw;
    if (p["type"] === "azure") {
      p["baseUrl"] ??= endpoint;
      if (env["AZURE_OPENAI_API_KEY"] && p["azureAdToken"] === undefined) p["apiKey"] ??= env["AZURE_OPENAI_API_KEY"];
    }
  }
  for (const p of Object.values(providers)) {
    if (typeof p !== "object" || p === null) continue;
    const q = p as Raw;
    if (q["type"] === "bedrock") {
      const region = env["AWS_REGION"] || env["AWS_DEFAULT_REGION"];
      if (q["region"] === undefined && region) q["region"] = region;
      const endpoint = env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] || env["AWS_ENDPOINT_URL"];
      if (q["baseUrl"] === undefined && endpoint) q["baseUrl"] = endpoint;
      const control = env["AWS_ENDPOINT_URL_BEDROCK"];
      if (q["controlBaseUrl"] === undefined && control) q["controlBaseUrl"] = control;
    }
    if (q["type"] === "azure" && q["apiVersion"] === undefined && env["OPENAI_API_VERSION"]) q["apiVersion"] = env["OPENAI_API_VERSION"];
  }
}

/**
 * Gemini from the environment, as Google's `@google/genai` SDK reads it:
 * `GOOGLE_API_KEY` (which wins) or `GEMINI_API_KEY` configures `gemini`
 * (AI Studio; `GOOGLE_GEMINI_BASE_URL` moves it); `GOOGLE_GENAI_USE_VERTEXAI=true`
 * with `GOOGLE_CLOUD_PROJECT` (and `GOOGLE_CLOUD_LOCATION`, default
 * `us-central1`) configures `vertex`. `GOOGLE_APPLICATION_CREDENTIALS` is
 * the credentials file of every Vertex provider that names none.
 */
function applyGoogleEnv(providers: Raw, env: Env): void {
  const key = env["GOOGLE_API_KEY"] || env["GEMINI_API_KEY"];
  if (key || env["GOOGLE_GEMINI_BASE_URL"]) {
    const p = (providers["gemini"] ??= { type: "gemini" }) as Raw;
    // A `gemini` entry of the file that is a Vertex provider takes no key.
    if (p["type"] === "gemini" && p["vertex"] === undefined) {
      if (key) p["apiKey"] = key;
      if (env["GOOGLE_GEMINI_BASE_URL"]) p["baseUrl"] = env["GOOGLE_GEMINI_BASE_URL"];
    }
  }
  if (env["GOOGLE_GENAI_USE_VERTEXAI"]?.toLowerCase() === "true" && env["GOOGLE_CLOUD_PROJECT"]) {
    providers["vertex"] ??= { type: "gemini", vertex: { project: env["GOOGLE_CLOUD_PROJECT"], location: env["GOOGLE_CLOUD_LOCATION"] || "us-central1" } };
  }
  const file = env["GOOGLE_APPLICATION_CREDENTIALS"];
  if (!file) return;
  for (const p of Object.values(providers)) {
    const q = p as Raw | null;
    if (q && typeof q === "object" && q["type"] === "gemini" && q["vertex"] !== undefined && q["credentialsFile"] === undefined) q["credentialsFile"] = file;
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
  return `${path || "(root)"}: ${issue.message}`;
}

/** Validates raw settings; throws a {@link ConfigError} naming every field at fault. */
export function parseConfig(raw: unknown): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid config: ${r.error.issues.map(describe).join("; ")}`);
  return r.data;
}

/**
 * Loads the configuration: the file at `path` (YAML or JSON) when given,
 * then the environment, then validation.
 */
export function loadConfig(path: string | undefined, env: Env = process.env): Config {
  let raw: Raw = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text) as unknown;
    } catch (e) {
      throw new ConfigError(`config file ${path} is not valid YAML/JSON: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${path}: the top level must be a mapping`);
      raw = parsed as Raw;
    }
  }
  return parseConfig(applyEnv(raw, env));
}
