/**
 * One policy over every HTTP provider type: an upstream that refuses the
 * gateway's key (401), forbids it (403) or does not know the model (404) is
 * the upstream's answer, not the client's fault, so the request falls back to
 * the next provider in `routing.fallbacks` — streamed and whole, through the
 * official `openai` SDK. A provider type added later belongs in `PROVIDERS`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import OpenAI from "openai";
import { startFakeAnthropic } from "./helpers/fake-anthropic.js";
import { startFakeBedrock } from "./helpers/fake-bedrock.js";
import { startFakeGemini } from "./helpers/fake-gemini.js";
import { startFakeOpenAi } from "./helpers/fake-openai.js";
import { startTestGateway } from "./helpers/gateway.js";

interface RefusingUpstream {
  readonly baseUrl: string;
  requests: readonly unknown[];
  close(): Promise<void>;
}

interface ProviderRow {
  readonly type: string;
  readonly model: string;
  /** A fake of this vendor answering every request with `status` and the vendor's own error body. */
  start(status: number): Promise<RefusingUpstream>;
  /** The provider's config, pointed at the fake. */
  config(baseUrl: string): Record<string, unknown>;
}

const ERROR_NAMES: Readonly<Record<number, { anthropic: string; bedrock: string; openai: string }>> = {
  401: { anthropic: "authentication_error", bedrock: "UnrecognizedClientException", openai: "invalid_api_key" },
  403: { anthropic: "permission_error", bedrock: "AccessDeniedException", openai: "permission_denied" },
  404: { anthropic: "not_found_error", bedrock: "ResourceNotFoundException", openai: "model_not_found" },
};

const PROVIDERS: readonly ProviderRow[] = [
  {
    type: "openai",
    model: "up/gpt-fake",
    start: (status) => startFakeOpenAi(() => ({ status, errorBody: { error: { message: "refused", type: "invalid_request_error", code: ERROR_NAMES[status]!.openai } } })),
    config: (baseUrl) => ({ type: "openai", baseUrl, apiKey: "sk-bad" }),
  },
  {
    type: "anthropic",
    model: "up/claude-fake-1",
    start: (status) => startFakeAnthropic(() => ({ status, errorType: ERROR_NAMES[status]!.anthropic, errorMessage: "refused" })),
    config: (baseUrl) => ({ type: "anthropic", baseUrl, apiKey: "sk-ant-bad" }),
  },
  {
    type: "gemini",
    model: "up/gemini-fake-1",
    start: (status) => startFakeGemini(() => ({ status, errorMessage: "refused" })),
    config: (baseUrl) => ({ type: "gemini", baseUrl, apiKey: "bad" }),
  },
  {
    type: "bedrock",
    model: "up/anthropic.claude-3-5-sonnet-20240620-v1:0",
    start: (status) => startFakeBedrock(() => ({ status, errorType: ERROR_NAMES[status]!.bedrock, errorMessage: "refused" })),
    config: (baseUrl) => ({ type: "bedrock", region: "us-east-1", baseUrl, accessKeyId: "AKIDFAKE", secretAccessKey: "fake-secret" }),
  },
];

describe("an upstream's refusal of the gateway's key or model falls back, for every provider type", () => {
  for (const p of PROVIDERS) {
    for (const status of [401, 403, 404]) {
      it(`${p.type}: upstream ${status} → the fallback serves, streamed and whole`, async () => {
        const fake = await p.start(status);
        const gw = await startTestGateway({
          routing: { maxAttempts: 1, breakerThreshold: 1000, fallbacks: { [p.model]: ["local/echo"] } },
          providers: { up: p.config(fake.baseUrl) },
        });
        try {
          const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
          const whole = await client.chat.completions.create({ model: p.model, messages: [{ role: "user", content: "echo me" }] });
          assert.equal(whole.model, "echo");
          assert.match(whole.choices[0]!.message.content ?? "", /echo me/);
          const stream = await client.chat.completions.create({ model: p.model, messages: [{ role: "user", content: "echo me too" }], stream: true });
          let text = "";
          for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
          assert.match(text, /echo me too/);
          assert.equal(fake.requests.length, 2, "each request asked the refusing upstream once, then fell back");
        } finally {
          await gw.close();
          await fake.close();
        }
      });
    }
  }
});
