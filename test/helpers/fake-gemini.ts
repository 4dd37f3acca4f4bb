/**
 * A fake Google Gemini API on loopback speaking the real wire format, for
 * both Google AI Studio (`/v1beta/models/{m}:streamGenerateContent`,
 * `x-goog-api-key`) and Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…`,
 * a bearer token from its own OAuth token endpoint `POST /token`, which
 * checks the service account's RS256-signed JWT grant like Google does).
 * Streams are `data: {GenerateContentResponse}` events separated by CRLF
 * CRLF with `alt=sse`, one JSON array without it; `:generateContent`
 * answers one merged object; errors are Google's
 * `{"error":{"code","message","status"}}`. Faults: any error status, an
 * error event mid-stream, stalls, a destroyed socket, a body that ends
 * early. Every request is recorded, and aborts are noticed.
 */
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRecordingServer, type RecordedRequest } from "./recording-server.js";

/** What the fake does for one generate request. */
export interface GeminiScript {
  /** Non-2xx status sent instead of an answer, with a Google error body. */
  status?: number;
  /** The error's `status` name (`RESOURCE_EXHAUSTED`, …); derived from `status` when absent. */
  errorStatus?: string;
  errorMessage?: string;
  /** The error's `details` (ErrorInfo, RetryInfo …). */
  errorDetails?: unknown[];
  headers?: Record<string, string>;
  /** The answer's chunks: objects are GenerateContentResponses, strings raw body text. */
  chunks?: unknown[];
  /** Pause between chunks. */
  delayMs?: number;
  /** After this many chunks: stop sending but keep the connection open. */
  stallAfter?: number;
  /** After this many chunks: destroy the socket. */
  destroyAfter?: number;
}

/** The running fake. */
export interface FakeGemini {
  /** Origin, as `baseUrl` / `httpOptions.baseUrl`. */
  readonly baseUrl: string;
  /** The token endpoint (`${baseUrl}/token`). */
  readonly tokenUrl: string;
  readonly requests: RecordedRequest[];
  /** Decides what to do per generate request; replace freely between tests. */
  script: (req: RecordedRequest) => GeminiScript;
  /** The AI Studio key it accepts (any when undefined). */
  apiKey: string | undefined;
  /** Lifetime of the next tokens it issues (seconds). */
  tokenExpiresIn: number;
  /** When set, the token endpoint answers this status with an OAuth error. */
  tokenFailure: number | undefined;
  /** Access tokens issued so far, in order. */
  readonly tokens: string[];
  /** Writes a service-account JSON file whose key the token endpoint trusts; returns its path. */
  serviceAccountFile(tokenUri?: string): string;
  nextAbort(): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const STATUS_NAMES: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** A Google error body. */
export function googleErrorBody(code: number, message: string, status = STATUS_NAMES[code] ?? "UNKNOWN", details?: unknown[]): unknown {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

/** Gemini's `usageMetadata` (cumulative on every chunk). */
export function usage(prompt: number, candidates: number, extra: { thoughts?: number; cached?: number } = {}): Record<string, unknown> {
  const total = prompt + candidates + (extra.thoughts ?? 0);
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: candidates,
    totalTokenCount: total,
    ...(extra.thoughts ? { thoughtsTokenCount: extra.thoughts } : {}),
    ...(extra.cached ? { cachedContentTokenCount: extra.cached } : {}),
  };
}

/** One GenerateContentResponse with `parts` in candidate 0, optionally its finishReason and usage. */
export function chunk(parts: unknown[], finishReason?: string, usageMetadata?: unknown): Record<string, unknown> {
  const candidate: Record<string, unknown> = { content: { parts, role: "model" }, index: 0 };
  if (finishReason) candidate["finishReason"] = finishReason;
  return { candidates: [candidate], ...(usageMetadata ? { usageMetadata } : {}), modelVersion: "gemini-fake-1", responseId: "resp-fake" };
}

/** A whole text answer, one chunk per piece; the last carries STOP and usage (usage rises on every chunk, as Gemini's does). */
export function textAnswer(pieces: string[], tokens: [number, number] = [10, pieces.length], finishReason = "STOP"): unknown[] {
  return pieces.map((text, i) => chunk([{ text }], i === pieces.length - 1 ? finishReason : undefined, usage(tokens[0], i === pieces.length - 1 ? tokens[1] : i)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `:generateContent`'s one object: parts of all chunks in order (adjacent texts joined), the last finishReason and usage. */
function merged(chunks: unknown[]): unknown {
  const parts: Array<Record<string, unknown>> = [];
  let finishReason: unknown;
  let usageMetadata: unknown;
  let promptFeedback: unknown;
  for (const c of chunks) {
    if (typeof c !== "object" || c === null) continue;
    const o = c as Record<string, any>;
    if (o["error"]) return o;
    const cand = o["candidates"]?.[0];
    for (const p of cand?.content?.parts ?? []) {
      const last = parts.at(-1);
      if (typeof p.text === "string" && last && typeof last["text"] === "string" && !!last["thought"] === !!p.thought && !p.thoughtSignature) last["text"] += p.text;
      else parts.push({ ...p });
    }
    finishReason = cand?.finishReason ?? finishReason;
    usageMetadata = o["usageMetadata"] ?? usageMetadata;
    promptFeedback = o["promptFeedback"] ?? promptFeedback;
  }
  return {
    candidates: [{ content: { parts, role: "model" }, ...(finishReason ? { finishReason } : {}), index: 0 }],
    ...(usageMetadata ? { usageMetadata } : {}),
    ...(promptFeedback ? { promptFeedback } : {}),
    modelVersion: "gemini-fake-1",
  };
}

async function answer(rec: RecordedRequest, res: ServerResponse, s: GeminiScript): Promise<void> {
  if (s.status && s.status >= 300) {
    res.writeHead(s.status, { "content-type": "application/json; charset=UTF-8", ...s.headers });
    res.end(JSON.stringify(googleErrorBody(s.status, s.errorMessage ?? `fake failure ${s.status}`, s.errorStatus, s.errorDetails), null, 2));
    return;
  }
  const chunks = s.chunks ?? textAnswer(["Hello", " from", " Gemini"]);
  const url = new URL(rec.url, "http://x");
  if (url.pathname.endsWith(":generateContent")) {
    res.writeHead(200, { "content-type": "application/json; charset=UTF-8", ...s.headers });
    res.end(JSON.stringify(merged(chunks), null, 2));
    return;
  }
  const sse = url.searchParams.get("alt") === "sse";
  res.writeHead(200, { "content-type": sse ? "text/event-stream" : "application/json; charset=UTF-8", ...s.headers });
  res.flushHeaders();
  if (!sse) res.write("[");
  for (let i = 0; i < chunks.length; i++) {
    if (s.stallAfter === i) return;
    if (s.destroyAfter === i) {
      res.socket?.destroy();
      return;
    }
    if (res.destroyed) return;
    const c = chunks[i];
    if (typeof c === "string") res.write(c);
    else if (sse) res.write(`data: ${JSON.stringify(c)}\r\n\r\n`);
    else res.write(`${i > 0 ? ",\r\n" : ""}${JSON.stringify(c, null, 2)}`);
    if (s.delayMs) await sleep(s.delayMs);
  }
  if (s.stallAfter === chunks.length) return;
  if (!sse) res.write("]");
  res.end();
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify(body));
}

/** Checks an RS256 JWT grant against `key`; returns its claims, or undefined. */
function verifyGrant(assertion: string, key: KeyObject): Record<string, unknown> | undefined {
  const [h, p, sig] = assertion.split(".");
  if (!h || !p || !sig) return undefined;
  const ok = verify("RSA-SHA256", Buffer.from(`${h}.${p}`), key, Buffer.from(sig, "base64url"));
  return ok ? (JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>) : undefined;
}

/** Starts the fake on a free loopback port. */
export async function startFakeGemini(script: FakeGemini["script"] = () => ({})): Promise<FakeGemini> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const trusted = createPublicKey(publicKey.export({ type: "spki", format: "pem" }));
  const tokens: string[] = [];
  const server = await startRecordingServer((rec, res) => {
    const url = new URL(rec.url, "http://x");
    if (rec.method === "POST" && url.pathname === "/token") {
      const form = new URLSearchParams(typeof rec.body === "string" ? rec.body : "");
      if (fake.tokenFailure) return json(res, fake.tokenFailure, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      const claims = form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" ? verifyGrant(form.get("assertion") ?? "", trusted) : undefined;
      if (!claims || claims["iss"] !== "spillway-test@fake-project.iam.gserviceaccount.com") {
        return json(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      }
      const token = `ya29.fake-${tokens.length + 1}`;
      tokens.push(token);
      return json(res, 200, { access_token: token, expires_in: fake.tokenExpiresIn, token_type: "Bearer" });
    }
    const vertex = /^\/v1(beta1)?\/(projects|publishers)\//.test(url.pathname);
    if (vertex) {
      const auth = String(rec.headers["authorization"] ?? "");
      if (!tokens.some((t) => auth === `Bearer ${t}`)) {
        return json(res, 401, googleErrorBody(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.", "UNAUTHENTICATED"));
      }
    } else if (fake.apiKey !== undefined && rec.headers["x-goog-api-key"] !== fake.apiKey) {
      return json(res, 400, googleErrorBody(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
        { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" },
      ]));
    }
    if (rec.method === "GET" && url.pathname === "/v1beta/models") {
      return json(res, 200, {
        models: [
          { name: "models/gemini-fake-1", displayName: "Gemini Fake", supportedGenerationMethods: ["generateContent", "countTokens"] },
          { name: "models/embedding-fake", supportedGenerationMethods: ["embedContent"] },
        ],
      });
    }
    if (rec.method === "GET" && url.pathname === "/v1beta1/publishers/google/models") {
      return json(res, 200, { publisherModels: [{ name: "publishers/google/models/gemini-fake-1" }] });
    }
    if (rec.method === "POST" && /\/models\/[^/:]+:(streamGenerateContent|generateContent)$/.test(url.pathname)) {
      void answer(rec, res, fake.script(rec)).catch(() => undefined);
      return;
    }
    json(res, 404, googleErrorBody(404, `Method not found: ${rec.method} ${url.pathname}`, "NOT_FOUND"));
  });
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const fake: FakeGemini = {
    baseUrl,
    tokenUrl: `${baseUrl}/token`,
    requests: server.requests,
    script,
    apiKey: undefined,
    tokenExpiresIn: 3600,
    tokenFailure: undefined,
    tokens,
    serviceAccountFile(tokenUri = `${baseUrl}/token`) {
      const file = join(tmpdir(), `spillway-sa-${server.port}-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          type: "service_account",
          project_id: "fake-project",
          private_key_id: "fake-key-1",
          private_key: pem,
          client_email: "spillway-test@fake-project.iam.gserviceaccount.com",
          client_id: "1",
          token_uri: tokenUri,
        }),
      );
      return file;
    },
    nextAbort: server.nextAbort,
    close: server.close,
  };
  return fake;
}
