import { Sha256 } from "@aws-crypto/sha256-js";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import { nodeAgentFor } from "../shared/upstream-transport.js";

/** Static AWS credentials, as in the config file. */
export interface AwsStaticCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

/** What signs requests for one Bedrock provider. */
export interface BedrockSigner {
  /**
   * The headers to send for `url` with `body`: `headers` plus `host` (the
   * exact host sent, port included), `x-amz-date`, `x-amz-security-token`
   * (temporary credentials) and `authorization`. Fails with `Unauthenticated`
   * when no credentials can be found.
   */
  sign(method: "GET" | "POST", url: URL, headers: Readonly<Record<string, string>>, body: string): Promise<Record<string, string>>;
}

/**
 * A SigV4 signer (AWS's `@smithy/signature-v4`, SHA-256 from
 * `@aws-crypto/sha256-js`) for service `service` in `region`. Credentials are
 * the static ones when given, else AWS's default chain
 * (`@aws-sdk/credential-provider-node`: `AWS_ACCESS_KEY_ID` /
 * `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE` or `profile`
 * in the shared config and credentials files, SSO, web identity, container
 * and instance metadata), which caches them and refreshes them before they
 * expire. The chain's STS and SSO calls use the provider's transport
 * (`proxy`, `caFile`, the proxy environment) through {@link nodeAgentFor};
 * the instance and container metadata endpoints are link-local and keep
 * their own direct connections. The canonical URI is the request path encoded once more (a model
 * id's `:` is `%3A` on the wire and `%253A` when signing), as AWS expects of
 * every service but S3.
 */
export function createBedrockSigner(opts: {
  readonly provider: string;
  readonly region: string;
  readonly service?: string | undefined;
  readonly credentials?: AwsStaticCredentials | undefined;
  readonly profile?: string | undefined;
}): BedrockSigner {
  // The chain's own AWS calls (STS web identity and assume-role, SSO) go out on the provider's transport: its proxy and caFile.
  const agent = nodeAgentFor(opts.provider);
  const clientConfig = { requestHandler: { httpAgent: agent, httpsAgent: agent } };
  const chain = opts.credentials ? undefined : defaultProvider({ ...(opts.profile ? { profile: opts.profile } : {}), clientConfig });
  const fixed = opts.credentials;
  const credentials = async (): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }> => {
    if (fixed) return { accessKeyId: fixed.accessKeyId, secretAccessKey: fixed.secretAccessKey, ...(fixed.sessionToken ? { sessionToken: fixed.sessionToken } : {}) };
    try {
      return await chain!();
    } catch (e) {
      throw new SpillwayError(Code.Unauthenticated, `${opts.provider}: no AWS credentials (config accessKeyId/secretAccessKey, AWS_ACCESS_KEY_ID, or a profile): ${(e as Error).message}`, {
        httpStatus: 401,
        reason: "invalid_api_key",
        retryable: false,
        fromUpstream: true,
        cause: e,
      });
    }
  };
  const signer = new SignatureV4({ service: opts.service ?? "bedrock", region: opts.region, credentials, sha256: Sha256, uriEscapePath: true });
  return {
    async sign(method, url, headers, body) {
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const signed = await signer.sign({
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { ...headers, host: url.host },
        body,
      });
      return signed.headers;
    },
  };
}
