import { readFileSync } from "node:fs";
import { GoogleAuth, type AuthClient } from "google-auth-library";
import { fetch as undiciFetch } from "undici";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { isObj, str } from "../shared/json.js";
import { dispatcherFor } from "../shared/upstream-transport.js";

/** The scope Vertex AI needs. */
const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
/** Google's OAuth token endpoint, which google-auth-library's service-account client always posts to. */
const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";

/** Bearer tokens for Vertex AI. */
export interface VertexTokens {
  /** A valid access token: the cached one, or a new one when it is about to expire. Rejects with a SpillwayError. */
  token(signal: AbortSignal): Promise<string>;
}

/** Where Vertex credentials come from. */
export interface VertexAuthOptions {
  readonly provider: string;
  /** Service-account (or other Google credential) JSON file; Application Default Credentials when absent. */
  readonly credentialsFile?: string | undefined;
  /** The OAuth token endpoint; the file's `token_uri`, else Google's, when absent. */
  readonly tokenUrl?: string | undefined;
}

/** Reads and parses the credentials file; throws an Error naming the file when it cannot. */
function readCredentials(file: string, where: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${where}: cannot read ${file}: ${(e as Error).message}`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`${where}: ${file} is not JSON`);
  }
  if (!isObj(j)) throw new Error(`${where}: ${file} is not a JSON object`);
  return j;
}

function authError(provider: string, e: unknown, signal: AbortSignal): SpillwayError {
  if (signal.aborted) return SpillwayError.from(signal.reason);
  const status = (e as { response?: { status?: unknown } }).response?.status;
  const detail = e instanceof Error ? e.message : String(e);
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new SpillwayError(Code.Unauthenticated, `${provider}: Google refused the credentials (${detail})`, {
      httpStatus: 401,
      reason: "upstream_auth_failed",
      retryable: false,
      fromUpstream: true,
      cause: e,
    });
  }
  return new SpillwayError(Code.Unavailable, `${provider}: could not get a Google access token (${detail})`, {
    httpStatus: 502,
    reason: "upstream_unreachable",
    fromUpstream: true,
    cause: e,
  });
}

/**
 * OAuth bearer tokens for Vertex AI from google-auth-library: a
 * service-account file (`credentialsFile`, read once, at start, so a bad
 * path fails the start), or Application Default Credentials
 * (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud, the metadata server). The
 * library caches the token and fetches a new one when it is within five
 * minutes of expiry; concurrent calls share one fetch. google-auth-library
 * posts service-account grants to Google's fixed endpoint, so a different
 * endpoint (`tokenUrl`, else a non-default `token_uri` in the file — for
 * tests and private token services) is put in place by a request
 * interceptor on the library's own HTTP client. Failures: the endpoint's
 * 4xx → `Unauthenticated` (401), anything else → `Unavailable` (502,
 * retryable). The library's requests go out on the provider's own
 * dispatcher (`dispatcherFor`, read per request), so its `proxy`, `caFile`
 * and the process's proxy environment apply to the token fetch as they do
 * to the model calls.
 */
export function createVertexTokens(opts: VertexAuthOptions): VertexTokens {
  const credentials = opts.credentialsFile ? readCredentials(opts.credentialsFile, `providers.${opts.provider}.credentialsFile`) : undefined;
  const fileUri = credentials ? str(credentials["token_uri"]) : "";
  const tokenUrl = opts.tokenUrl ?? (fileUri && fileUri !== GOOGLE_TOKEN_URL ? fileUri : undefined);
  const viaTransport = ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: dispatcherFor(opts.provider) })) as unknown as typeof fetch;
  const auth = new GoogleAuth({ scopes: [SCOPE], ...(credentials ? { credentials } : {}), clientOptions: { transporterOptions: { fetchImplementation: viaTransport } } });
  let client: Promise<AuthClient> | undefined;

  const getClient = (): Promise<AuthClient> =>
    (client ??= auth.getClient().then((c) => {
      if (tokenUrl) {
        c.transporter.interceptors.request.add({
          resolved: (o) => {
            if (String(o.url) === GOOGLE_TOKEN_URL) o.url = new URL(tokenUrl);
            return Promise.resolve(o);
          },
        });
      }
      return c;
    })).catch((e: unknown) => {
      client = undefined;
      throw e;
    });

  return {
    async token(signal) {
      if (signal.aborted) throw SpillwayError.from(signal.reason);
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason as Error);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      try {
        const c = await Promise.race([getClient(), aborted]);
        const { token } = await Promise.race([c.getAccessToken(), aborted]);
        if (!token) throw new Error("no access token in the answer");
        return token;
      } catch (e) {
        throw authError(opts.provider, e, signal);
      } finally {
        if (onAbort) signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
