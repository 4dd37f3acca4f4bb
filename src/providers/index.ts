import type { Config } from "../config/schema.js";
import type { Provider } from "../engine/provider.js";
import { createAnthropicProvider } from "./anthropic/anthropic-provider.js";
import { createLocalProvider } from "./local/local-provider.js";
import { createOpenAiProvider } from "./openai/openai-provider.js";

/** Builds every configured provider, in configuration order. */
export function createProviders(config: Config): Provider[] {
  const out: Provider[] = [];
  for (const [name, p] of Object.entries(config.providers)) {
    switch (p.type) {
      case "local":
        out.push(createLocalProvider({ name, tokenDelayMs: p.tokenDelayMs }));
        break;
      case "openai":
        out.push(
          createOpenAiProvider({
            name,
            baseUrl: p.baseUrl,
            apiKey: p.apiKey,
            apiKeys: p.apiKeys,
            headers: p.headers,
            models: p.models,
            timeoutMs: p.timeoutMs,
            responsesApi: p.responsesApi,
          }),
        );
        break;
      case "anthropic":
        out.push(
          createAnthropicProvider({
            name,
            baseUrl: p.baseUrl,
            apiKey: p.apiKey,
            apiKeys: p.apiKeys,
            headers: p.headers,
            models: p.models,
            timeoutMs: p.timeoutMs,
            maxTokens: p.maxTokens,
          }),
        );
        break;
    }
  }
  return out;
}
