/**
 * Bedrock without static keys: AWS's default credential chain, here its web
 * identity step (a token file and a role, as on EKS), assumes the role with
 * STS and signs with the temporary credentials. Behind a forward proxy the
 * chain's own STS call goes through the provider's `proxy` and trusts its
 * `caFile` (src/providers/shared/upstream-transport.ts, `nodeAgentFor`), as
 * the model calls do. Against a fake STS over TLS that only the proxy can
 * reach (`upstream.test`), answering AssumeRoleWithWebIdentity in STS's
 * query-protocol XML, and the fake Bedrock, which checks the SigV4 signature
 * with the temporary key and session token; driven by the openai SDK.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startFakeBedrock, type FakeBedrock } from "./helpers/fake-bedrock.js";
import { NAMED, startFakeProxy, type FakeProxy } from "./helpers/fake-proxy.js";
import { startTestGateway } from "./helpers/gateway.js";
import { makeSelfSignedCert, type TestCert } from "./helpers/realtime-tls.js";

const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const WEB_TOKEN = "eyJ.fake-web-identity.token";
const ROLE = "arn:aws:iam::123456789012:role/spillway";

interface FakeSts {
  readonly port: number;
  /** The form bodies it received. */
  readonly calls: URLSearchParams[];
  close(): Promise<void>;
}

/** STS over TLS: AssumeRoleWithWebIdentity answers temporary credentials for the right token and role. */
async function startFakeSts(cert: TestCert): Promise<FakeSts> {
  const calls: URLSearchParams[] = [];
  const server: Server = createServer({ key: readFileSync(cert.keyFile), cert: readFileSync(cert.certFile) }, (req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      calls.push(form);
      if (form.get("Action") !== "AssumeRoleWithWebIdentity" || form.get("WebIdentityToken") !== WEB_TOKEN || form.get("RoleArn") !== ROLE) {
        res.writeHead(403, { "content-type": "text/xml" }).end(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>`);
        return;
      }
      res.writeHead(200, { "content-type": "text/xml" }).end(
        `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
          `<Credentials><AccessKeyId>ASIASTSFAKE</AccessKeyId><SecretAccessKey>sts-secret</SecretAccessKey><SessionToken>sts-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
          `<SubjectFromWebIdentityToken>system:serviceaccount:default:spillway</SubjectFromWebIdentityToken>` +
          `<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/spillway/s</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>` +
          `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let cert: TestCert;
let sts: FakeSts;
let bedrock: FakeBedrock;
let proxy: FakeProxy;
const saved: Record<string, string | undefined> = {};

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "spillway-aws-chain-"));
  cert = makeSelfSignedCert(dir);
  sts = await startFakeSts(cert);
  bedrock = await startFakeBedrock(undefined, { ASIASTSFAKE: "sts-secret" });
  proxy = await startFakeProxy();
  const tokenFile = join(dir, "web-identity-token");
  writeFileSync(tokenFile, WEB_TOKEN);
  // The chain reads the environment when it first runs (at the first call), so it is set for this whole file (its own process).
  const env: Record<string, string | undefined> = {
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ROLE_ARN: ROLE,
    AWS_ROLE_SESSION_NAME: "s",
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT_URL_STS: `https://${NAMED}:${sts.port}`,
    AWS_CONFIG_FILE: join(dir, "none-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "none-credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    HTTPS_PROXY: undefined,
    HTTP_PROXY: undefined,
  };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await bedrock.close();
  await sts.close();
  await proxy.close();
});

const gatewayWith = (extra: Record<string, unknown>) =>
  startTestGateway({ routing: { maxAttempts: 1 }, providers: { aws: { type: "bedrock", region: "us-east-1", baseUrl: bedrock.baseUrl, models: [MODEL], proxy: proxy.url, ...extra } } });

describe("bedrock: the default credential chain behind a proxy", () => {
  it("assumes the role with STS through the provider's proxy, trusting its caFile, and signs with the temporary credentials", async () => {
    const gw = await gatewayWith({ caFile: cert.certFile });
    try {
      const logged = proxy.log.length;
      const c = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const r = await c.chat.completions.create({ model: `aws/${MODEL}`, messages: [{ role: "user", content: "hi" }] });
      assert.equal(r.choices[0]!.message.content, "Hello from Bedrock");
      assert.equal(sts.calls.length, 1);
      assert.equal(sts.calls[0]!.get("WebIdentityToken"), WEB_TOKEN);
      const seen = proxy.log.slice(logged);
      assert.ok(seen.includes(`CONNECT ${NAMED}:${sts.port}`), `STS was tunnelled through the proxy:\n${seen.join("\n")}`);
      assert.ok(seen.some((l) => l.startsWith(`POST ${bedrock.baseUrl}`)), "the model call went through the proxy too");
      const call = bedrock.requests.at(-1)!;
      assert.equal(call.auth, "ok");
      assert.equal(call.scope?.accessKeyId, "ASIASTSFAKE");
      assert.equal(call.headers["x-amz-security-token"], "sts-session-token");
    } finally {
      await gw.close();
    }
  });

  it("without the caFile the tunnelled STS certificate is not trusted: 401 naming the missing credentials, nothing reaches Bedrock", async () => {
    const gw = await gatewayWith({});
    try {
      const calls = sts.calls.length;
      const requests = bedrock.requests.length;
      const c = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      await assert.rejects(c.chat.completions.create({ model: `aws/${MODEL}`, messages: [{ role: "user", content: "hi" }] }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, 401);
        assert.match(e.message, /no AWS credentials/);
        return true;
      });
      assert.equal(sts.calls.length, calls, "the TLS handshake failed before any request");
      assert.equal(bedrock.requests.length, requests);
    } finally {
      await gw.close();
    }
  });
});
