/**
 * A fake Azure OpenAI realtime endpoint on loopback: the fake OpenAI
 * Realtime upstream (GA event names, the same faults) behind a gate that
 * checks what Azure checks at the upgrade, and refuses like Azure:
 *
 * - the route: GA `/openai/v1/realtime?model=<deployment>`, or preview
 *   `/openai/realtime?api-version=<preview version>&deployment=<deployment>`
 *   (what the openai SDK's `OpenAIRealtimeWS.azure()` opens); anything else
 *   404 `Resource not found`; a preview route without a supported
 *   `api-version` 400 `API version not supported`;
 * - auth: the `api-key` header, or `authorization: Bearer <Entra token>`;
 *   else 401 with Azure's "Access denied due to invalid subscription key…";
 * - the deployment: one of `deployments`, else 404 `DeploymentNotFound`.
 *
 * Plain HTTP on `endpoint`; with a certificate also TLS on `tlsEndpoint`
 * (for the openai SDK, which always opens wss://).
 */
import type { IncomingHttpHeaders } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { startFakeOpenAiRealtime, type FakeOpenAiRealtime } from "./fake-openai-realtime.js";
import type { TestCert } from "./realtime-tls.js";

/** What the fake Azure resource accepts. */
export interface FakeAzureRealtimeOptions {
  /** The resource's key (`api-key`). */
  readonly apiKey: string;
  /** An Entra ID token accepted as `authorization: Bearer`. */
  readonly entraToken?: string;
  /** Deployment names of the resource. */
  readonly deployments: readonly string[];
  /** Also listen with TLS on this certificate. */
  readonly cert?: TestCert;
}

/** The running fake (the OpenAI fake's connections, behaviours and faults, plus Azure's endpoints). */
export interface FakeAzureRealtime extends FakeOpenAiRealtime {
  /** `http://127.0.0.1:PORT`, as AZURE_OPENAI_ENDPOINT. */
  readonly endpoint: string;
  /** `https://127.0.0.1:PORT` when a certificate was given. */
  readonly tlsEndpoint: string | undefined;
}

const SUPPORTED_PREVIEW = /^\d{4}-\d{2}-\d{2}-preview$/;
/** Realtime arrived in this api-version. */
const FIRST_REALTIME_VERSION = "2024-10-01-preview";

function azureError(status: number, code: string, message: string): { status: number; body: unknown } {
  return { status, body: { error: { code, message } } };
}

/** Azure's answer to one upgrade: a refusal, or undefined to accept it. */
export function azureGate(opts: FakeAzureRealtimeOptions, url: string, headers: IncomingHttpHeaders): { status: number; body: unknown } | undefined {
  const u = new URL(url, "http://x");
  let deployment: string | null;
  if (u.pathname === "/openai/v1/realtime") {
    deployment = u.searchParams.get("model");
  } else if (u.pathname === "/openai/realtime") {
    const version = u.searchParams.get("api-version") ?? "";
    if (!SUPPORTED_PREVIEW.test(version) || version < FIRST_REALTIME_VERSION) return azureError(400, "BadRequest", "API version not supported");
    deployment = u.searchParams.get("deployment");
  } else {
    return azureError(404, "404", "Resource not found");
  }
  const key = headers["api-key"];
  const bearer = headers["authorization"];
  const authorized = key === opts.apiKey || (opts.entraToken !== undefined && bearer === `Bearer ${opts.entraToken}`);
  if (!authorized) {
    return azureError(
      401,
      "401",
      "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    );
  }
  if (!deployment || !opts.deployments.includes(deployment)) {
    return azureError(
      404,
      "DeploymentNotFound",
      "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
    );
  }
  return undefined;
}

/** Starts the fake on free loopback ports. */
export async function startFakeAzureRealtime(opts: FakeAzureRealtimeOptions): Promise<FakeAzureRealtime> {
  const inner = await startFakeOpenAiRealtime();
  inner.gate = (url, headers) => azureGate(opts, url, headers);
  let tls: HttpsServer | undefined;
  let tlsEndpoint: string | undefined;
  if (opts.cert) {
    const server = createHttpsServer({ cert: readFileSync(opts.cert.certFile), key: readFileSync(opts.cert.keyFile) }, (_req, res) => res.writeHead(404).end());
    server.on("upgrade", inner.handleUpgrade);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    tls = server;
    tlsEndpoint = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  const closeInner = inner.close.bind(inner);
  return Object.assign(inner, {
    endpoint: inner.baseUrl.replace(/\/v1$/, ""),
    tlsEndpoint,
    close: async () => {
      await closeInner();
      if (tls) {
        tls.closeAllConnections();
        await new Promise<void>((r) => tls.close(() => r()));
      }
    },
  });
}
