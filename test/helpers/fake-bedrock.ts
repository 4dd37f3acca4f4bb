/**
 * A fake AWS Bedrock Runtime (Converse API) on loopback that speaks the real
 * wire protocol: it checks every request's SigV4 `Authorization` (the
 * credential scope, then the signature itself, recomputed with AWS's
 * `@smithy/signature-v4` from the request exactly as received), and answers
 * `converse-stream` with binary `application/vnd.amazon.eventstream`
 * messages encoded by AWS's `@smithy/eventstream-codec` (real prelude and
 * message CRCs, a random `p` padding field in each payload), written in
 * small pieces so messages span reads. Faults: any error status with
 * Bedrock's error shape (`x-amzn-ErrorType`, `{"message"}`), exception
 * frames mid-stream, a body cut in the middle, a stall.
 */
import type { ServerResponse } from "node:http";
import { Sha256 } from "@aws-crypto/sha256-js";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { startRecordingServer, type RecordedRequest } from "./recording-server.js";

/** One event-stream message to send. */
export interface Frame {
  readonly headers: Record<string, string>;
  readonly payload: unknown;
}

/** What the fake does for one request. */
export interface BedrockScript {
  /** Non-2xx status sent instead of a stream, with `errorType` in `x-amzn-ErrorType`. */
  status?: number;
  errorType?: string;
  errorMessage?: string;
  headers?: Record<string, string>;
  /** Messages of a `converse-stream` answer. */
  frames?: Frame[];
  /** The whole answer of `/converse`. */
  answer?: unknown;
  /** Bytes per write (default 7: every message spans several reads). */
  pieceBytes?: number;
  /** Pause between messages. */
  delayMs?: number;
  /** Pause between the pieces of a message (default: one event-loop turn). */
  pieceDelayMs?: number;
  /** After this many messages: write half of the next one, then destroy the socket. */
  cutAfter?: number;
  /** After this many messages: stop sending but keep the connection open. */
  stallAfter?: number;
}

/** A request the fake received, with the outcome of its signature check. */
export interface RecordedBedrockRequest extends RecordedRequest {
  /** `ok`, or why the signature was refused. */
  auth: string;
  /** The parsed `Authorization` credential scope: key id, date, region, service. */
  scope?: { accessKeyId: string; date: string; region: string; service: string; terminator: string };
}

/** The running fake. */
export interface FakeBedrock {
  readonly baseUrl: string;
  readonly requests: RecordedBedrockRequest[];
  script: (req: RecordedBedrockRequest) => BedrockScript;
  /** What the control plane lists: `GET /foundation-models` and `GET /inference-profiles`. */
  catalog: { foundation: string[]; profiles: string[] };
  nextAbort(): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** Encodes one message as Bedrock sends it: JSON payload with random `p` padding. */
export function encodeFrame(f: Frame): Uint8Array {
  const pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ".slice(0, 1 + Math.floor(Math.random() * 30));
  const payload = typeof f.payload === "object" && f.payload !== null ? { ...(f.payload), p: pad } : f.payload;
  const headers = Object.fromEntries(Object.entries(f.headers).map(([k, v]) => [k, { type: "string" as const, value: v }]));
  return codec.encode({ headers, body: fromUtf8(JSON.stringify(payload)) });
}

/** An event message (`:message-type: event`). */
export function event(type: string, payload: unknown): Frame {
  return { headers: { ":event-type": type, ":content-type": "application/json", ":message-type": "event" }, payload };
}

/** An exception message inside the 200 stream (`:message-type: exception`). */
export function exception(type: string, message: string): Frame {
  return { headers: { ":exception-type": type, ":content-type": "application/json", ":message-type": "exception" }, payload: { message } };
}

export const messageStart = (): Frame => event("messageStart", { role: "assistant" });
/** Text deltas for block `index` — without `contentBlockStart`, as Bedrock sends text — then its stop. */
export const textBlock = (index: number, parts: string[]): Frame[] => [
  ...parts.map((text) => event("contentBlockDelta", { contentBlockIndex: index, delta: { text } })),
  event("contentBlockStop", { contentBlockIndex: index }),
];
/** A toolUse block at `index`, its input JSON in `pieces`. */
export const toolBlock = (index: number, id: string, name: string, pieces: string[]): Frame[] => [
  event("contentBlockStart", { contentBlockIndex: index, start: { toolUse: { toolUseId: id, name } } }),
  ...pieces.map((input) => event("contentBlockDelta", { contentBlockIndex: index, delta: { toolUse: { input } } })),
  event("contentBlockStop", { contentBlockIndex: index }),
];
/** A reasoning block: text pieces then the signature. */
export const reasoningBlock = (index: number, parts: string[], signature: string): Frame[] => [
  ...parts.map((text) => event("contentBlockDelta", { contentBlockIndex: index, delta: { reasoningContent: { text } } })),
  event("contentBlockDelta", { contentBlockIndex: index, delta: { reasoningContent: { signature } } }),
  event("contentBlockStop", { contentBlockIndex: index }),
];
/** `messageStop` then `metadata` (usage, latency), in Bedrock's order. */
export const messageEnd = (stopReason: string, usage: [number, number] = [10, 5], extra: Record<string, unknown> = {}): Frame[] => [
  event("messageStop", { stopReason, ...extra }),
  event("metadata", { usage: { inputTokens: usage[0], outputTokens: usage[1], totalTokens: usage[0] + usage[1] }, metrics: { latencyMs: 42 } }),
];
/** A whole text answer. */
export const textAnswer = (parts: string[], usage: [number, number] = [10, 5]): Frame[] => [messageStart(), ...textBlock(0, parts), ...messageEnd("end_turn", usage)];

/** Parses `AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/bedrock/aws4_request, SignedHeaders=a;b, Signature=hex`. */
function parseAuthorization(value: string): { scope: RecordedBedrockRequest["scope"]; signedHeaders: string[]; signature: string } | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(value);
  if (!m) return undefined;
  return {
    scope: { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, terminator: m[5]! },
    signedHeaders: m[6]!.split(";"),
    signature: m[7]!,
  };
}

function amzDate(v: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

/**
 * Checks a request's SigV4 signature: the scope (known key, date of
 * `x-amz-date`, `region`, service `bedrock`, `aws4_request`), that `host` is
 * signed and is the exact Host received, then recomputes the signature over
 * the signed headers, the raw path (encoded again by the signer, as AWS
 * does) and the body as received.
 */
async function verify(rec: RecordedBedrockRequest, rawBody: string, secrets: Record<string, string>, region: string): Promise<string> {
  const auth = rec.headers["authorization"];
  if (typeof auth !== "string") return "MissingAuthenticationTokenException";
  const parsed = parseAuthorization(auth);
  if (!parsed) return "IncompleteSignatureException";
  if (parsed.scope) rec.scope = parsed.scope;
  const { scope, signedHeaders, signature } = parsed;
  const secret = secrets[scope!.accessKeyId];
  if (secret === undefined) return "UnrecognizedClientException";
  const date = amzDate(String(rec.headers["x-amz-date"] ?? ""));
  if (!date || scope!.date !== String(rec.headers["x-amz-date"]).slice(0, 8)) return "InvalidSignatureException: bad date";
  if (scope!.region !== region || scope!.service !== "bedrock" || scope!.terminator !== "aws4_request") return "InvalidSignatureException: bad scope";
  if (!signedHeaders.includes("host") || !signedHeaders.includes("x-amz-date")) return "InvalidSignatureException: host and x-amz-date must be signed";
  const headers: Record<string, string> = {};
  for (const h of signedHeaders) {
    const v = rec.headers[h];
    if (v === undefined) return `InvalidSignatureException: signed header ${h} missing`;
    headers[h] = Array.isArray(v) ? v.join(",") : v;
  }
  const url = new URL(rec.url, `http://${headers["host"]}`);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const token = rec.headers["x-amz-security-token"];
  const signer = new SignatureV4({
    service: "bedrock",
    region,
    sha256: Sha256,
    credentials: { accessKeyId: scope!.accessKeyId, secretAccessKey: secret, ...(typeof token === "string" ? { sessionToken: token } : {}) },
  });
  const hostname = url.hostname;
  const signed = await signer.sign(
    { method: rec.method, protocol: "http:", hostname, ...(url.port ? { port: Number(url.port) } : {}), path: rec.url.split("?")[0]!, query, headers, body: rawBody },
    { signingDate: date, signableHeaders: new Set(signedHeaders) },
  );
  const expected = parseAuthorization(String(signed.headers["authorization"]));
  if (!expected || expected.signature !== signature) return "InvalidSignatureException: signature mismatch";
  return "ok";
}

/** Starts the fake; `secrets` maps access key ids to secret keys, `region` is the one signatures must name. */
export async function startFakeBedrock(
  script: (req: RecordedBedrockRequest) => BedrockScript = () => ({ frames: textAnswer(["Hello", " from Bedrock"]) }),
  secrets: Record<string, string> = { AKIDFAKE: "fake-secret" },
  region = "us-east-1",
): Promise<FakeBedrock> {
  const requests: RecordedBedrockRequest[] = [];
  let current = script;
  const catalog = { foundation: ["anthropic.claude-3-5-sonnet-20240620-v1:0", "amazon.nova-lite-v1:0"], profiles: ["us.anthropic.claude-sonnet-4-20250514-v1:0"] };
  const server = await startRecordingServer((rec0, res) => {
    const rec = rec0 as RecordedBedrockRequest;
    requests.push(rec);
    const raw = typeof rec.body === "string" ? rec.body : rec.body === undefined ? "" : JSON.stringify(rec.body);
    void verify(rec, raw, secrets, region).then((auth) => {
      rec.auth = auth;
      if (auth !== "ok") {
        const type = auth.split(":")[0]!;
        // AWS answers every credential failure with 403.
        sendError(res, 403, type, `The request signature we calculated does not match (${auth})`);
        return;
      }
      const path = rec.url.split("?")[0];
      if (rec.method === "GET" && path === "/foundation-models") {
        const summaries = catalog.foundation.map((modelId) => ({ modelArn: `arn:aws:bedrock:${region}::foundation-model/${modelId}`, modelId, providerName: modelId.split(".")[0], inputModalities: ["TEXT"], outputModalities: ["TEXT"], responseStreamingSupported: true, inferenceTypesSupported: ["ON_DEMAND"], modelLifecycle: { status: "ACTIVE" } }));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ modelSummaries: summaries }));
        return;
      }
      if (rec.method === "GET" && path === "/inference-profiles") {
        const summaries = catalog.profiles.map((id) => ({ inferenceProfileId: id, inferenceProfileName: id, inferenceProfileArn: `arn:aws:bedrock:${region}:123456789012:inference-profile/${id}`, status: "ACTIVE", type: "SYSTEM_DEFINED", models: [] }));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ inferenceProfileSummaries: summaries }));
        return;
      }
      void answer(current(rec), res);
    });
  });
  return {
    baseUrl: `http://127.0.0.1:${server.port}`,
    requests,
    get script() {
      return current;
    },
    set script(s) {
      current = s;
    },
    catalog,
    nextAbort: server.nextAbort,
    close: server.close,
  };
}

function sendError(res: ServerResponse, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, "x-amzn-requestid": "fake-req", ...headers });
  res.end(JSON.stringify({ message }));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function answer(s: BedrockScript, res: ServerResponse): Promise<void> {
  if (s.status !== undefined && s.status >= 300) {
    sendError(res, s.status, s.errorType ?? "InternalServerException", s.errorMessage ?? "error", s.headers);
    return;
  }
  if (s.answer !== undefined) {
    res.writeHead(200, { "content-type": "application/json", ...s.headers });
    res.end(JSON.stringify(s.answer));
    return;
  }
  res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "fake-req", ...s.headers });
  const piece = s.pieceBytes ?? 7;
  const frames = s.frames ?? [];
  for (let i = 0; i < frames.length; i++) {
    if (res.destroyed) return;
    const bytes = encodeFrame(frames[i]!);
    if (s.stallAfter !== undefined && i >= s.stallAfter) return;
    if (s.cutAfter !== undefined && i >= s.cutAfter) {
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
      await sleep(20);
      res.socket?.destroy();
      return;
    }
    for (let off = 0; off < bytes.length; off += piece) {
      res.write(bytes.subarray(off, off + piece));
      // A turn between pieces, so they reach the gateway as separate reads.
      if (s.pieceDelayMs) await sleep(s.pieceDelayMs);
      else await new Promise((r) => setImmediate(r));
    }
    if (s.delayMs) await sleep(s.delayMs);
  }
  if (s.stallAfter !== undefined) return;
  res.end();
}
