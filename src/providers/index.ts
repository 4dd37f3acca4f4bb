import type { Config } from "../config/schema.js";
import type { Provider } from "../engine/provider.js";
import { createAnthropicProvider } from "./anthropic/anthropic-provider.js";
import { createAzureProvider } from "./azure/azure-provider.js";
import { createBedrockProvider } from "./bedrock/bedrock-provider.js";
import { createDeepgramProvider } from "./deepgram/deepgram-provider.js";
import { createElevenLabsProvider } from "./elevenlabs/elevenlabs-provider.js";
import { createGeminiProvider } from "./gemini/gemini-provider.js";
import { createLocalProvider } from "./local/local-provider.js";
import { createOpenAiProvider } from "./openai/openai-provider.js";
import { configureUpstreamTransports } from "./shared/upstream-transport.js";

/**
 * Builds every configured provider, in configuration order, then sets their
 * upstream transports (`http2`, `caFile`: upstream-transport.ts) — last, so a
 * provider that refuses its settings leaves the transports in force as they were.
 */
export function createProviders(config: Config): Provider[] {
  const out: Provider[] = [];
  for (const [name, p] of Object.entries(config.providers)) {
    switch (p.type) {
      case "local":
        out.push(createLocalProvider({ name, tokenDelayMs: p.tokenDelayMs }));
        break;
      case "openai": {
        const { type: _openai, ...settings } = p;
        out.push(createOpenAiProvider({ name, ...settings }));
        break;
      }
      case "bedrock": {
        const { type: _bedrock, ...settings } = p;
        out.push(createBedrockProvider({ name, ...settings }));
        break;
      }
      case "azure": {
        const { type: _azure, ...settings } = p;
        out.push(createAzureProvider({ name, ...settings }));
        break;
      }
      case "anthropic": {
        const { type: _anthropic, ...settings } = p;
        out.push(createAnthropicProvider({ name, ...settings }));
        break;
      }
      case "gemini": {
        const { type: _gemini, ...settings } = p;
        out.push(createGeminiProvider({ name, ...settings }));
        break;
      }
      case "deepgram": {
        const { type: _deepgram, ...settings } = p;
        out.push(createDeepgramProvider({ name, ...settings }));
        break;
      }
      case "elevenlabs": {
        const { type: _elevenlabs, ...settings } = p;
        out.push(createElevenLabsProvider({ name, ...settings }));
        break;
      }
    }
  }
  configureUpstreamTransports(config.providers);
  return out;
}
