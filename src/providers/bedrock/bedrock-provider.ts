import type { Provider } from "../../engine/provider.js";
import { LazyStream } from "../shared/lazy-stream.js";
import { postJsonStream } from "../shared/upstream-stream.js";
import { upstreamRequest } from "../shared/upstream-http.js";
import { converseBody } from "./converse-request.js";
import { converseAnswerPayloads, converseStreamPayloads } from "./converse-stream.js";
import { bedrockHttpError } from "./errors.js";
import { bedrockModelInfo, createBedrockModelList } from "./models.js";
import { createBedrockSigner, type AwsStaticCredentials } from "./sigv4.js";

/** Settings of one Bedrock Runtime upstream. */
export interface BedrockProviderOptions {
  /** Prefix of its model ids (`bedrock`). */
  readonly name: string;
  /** AWS region (`us-east-1`): the signing region and the default endpoint's. */
  readonly region: string;
  /** Endpoint override (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`); `https://bedrock-runtime.{region}.amazonaws.com` when absent. */
  readonly baseUrl?: string | undefined;
  /** Static credentials; AWS's default chain when absent. */
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly sessionToken?: string | undefined;
  /** Shared-config profile for the default chain (else `AWS_PROFILE`, else `default`). */
  readonly profile?: string | undefined;
  /** Extra headers for every upstream request (signed with the rest). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Model ids (or inference profile ids / ARNs) to list in `/v1/models`; fetched from the control plane when absent. */
  readonly models?: readonly string[] | undefined;
  /**
   * Bedrock's control plane, for the model list (`AWS_ENDPOINT_URL_BEDROCK`);
   * `baseUrl` when that is set, else `https://bedrock.{region}.amazonaws.com`.
   */
  readonly controlBaseUrl?: string | undefined;
  /** Time to first chunk (ms); the engine's default when absent. */
  readonly timeoutMs?: number | undefined;
  /** Use `/converse-stream` (default) or the whole-answer `/converse` (for models that cannot stream tool use). */
  readonly stream?: boolean | undefined;
}

/** An async iterator over payloads already in hand (a whole `/converse` answer). */
function fromArray<T>(items: readonly T[]): AsyncIterator<T> {
  let i = 0;
  return {
    next: () => Promise.resolve(i < items.length ? { done: false, value: items[i++]! } : { done: true, value: undefined }),
    return: () => {
      i = items.length;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
}

/**
 * A provider for AWS Bedrock's Converse API (`bedrock/<modelId>`): each
 * attempt is signed anew with SigV4 (service `bedrock`), sent with undici
 * under the call's AbortSignal (a client that leaves aborts the upstream at
 * once), and the binary event-stream answer translated into chunks as it
 * arrives. Errors before the stream keep Bedrock's meaning (429 with
 * `Retry-After`, 5xx as 502, credentials AWS refuses as 401).
 */
export function createBedrockProvider(opts: BedrockProviderOptions): Provider {
  const base = (opts.baseUrl ?? `https://bedrock-runtime.${opts.region}.amazonaws.com`).replace(/\/+$/, "");
  const credentials: AwsStaticCredentials | undefined =
    opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey, sessionToken: opts.sessionToken } : undefined;
  const signer = createBedrockSigner({ provider: opts.name, region: opts.region, credentials, profile: opts.profile });
  const streamed = opts.stream !== false;

  const controlUrl = (opts.controlBaseUrl ?? opts.baseUrl ?? `https://bedrock.${opts.region}.amazonaws.com`).replace(/\/+$/, "");
  const fetchModels = createBedrockModelList({ provider: opts.name, controlUrl, signer });

  return {
    name: opts.name,
    timeoutMs: opts.timeoutMs,
    listModels(signal) {
      if (opts.models) return Promise.resolve(opts.models.map((m) => bedrockModelInfo(opts.name, m)));
      return fetchModels(signal);
    },
    generate(model, req, ctx) {
      return new LazyStream(async () => {
        const { body, jsonTool } = converseBody(model, req);
        const text = JSON.stringify(body);
        // The model id is one path segment: `:` and `/` (ARNs) are percent-encoded on the wire.
        const url = new URL(`${base}/model/${encodeURIComponent(model)}/${streamed ? "converse-stream" : "converse"}`);
        const headers = await signer.sign(
          "POST",
          url,
          {
            ...opts.headers,
            "content-type": "application/json",
            accept: streamed ? "application/vnd.amazon.eventstream" : "application/json",
          },
          text,
        );
        if (streamed) {
          // The binary event stream from undici's dispatcher straight to the push reader (see postJsonStream).
          const abort = ctx.abortSource ?? ctx.signal;
          const s = await postJsonStream(opts.name, url.href, text, headers, abort, bedrockHttpError);
          return converseStreamPayloads(s.body, opts.name, abort, jsonTool, ctx.alive);
        }
        const res = await upstreamRequest(opts.name, url.href, { method: "POST", headers, body: text, signal: ctx.signal });
        if (!res.ok) throw await bedrockHttpError(opts.name, res);
        return fromArray(converseAnswerPayloads(opts.name, await res.json(), jsonTool));
      });
    },
  };
}
