import { setTimeout as sleep } from "node:timers/promises";
import type { GenerateRequest } from "../../gen/spillway/v1/request.js";
import {
  finishPayload,
  FinishReason,
  textPayload,
  usagePayload,
  type ChunkPayload,
} from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { countTokens, splitTokens } from "./tokens.js";

/** Settings of the echo model. */
export interface EchoOptions {
  /** Pause before each token (ms); 0 streams as fast as the client reads. */
  readonly tokenDelayMs: number;
}

/** The text the echo model answers with: the last user message, or the prompt. */
export function echoText(req: GenerateRequest): string {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i]!;
    if (m.role === "user") return m.content;
  }
  return req.prompt || (req.messages.at(-1)?.content ?? "");
}

/** Counts the prompt's tokens: every message's text, or the prompt. */
export function promptTokens(req: GenerateRequest): number {
  let n = countTokens(req.prompt);
  for (const m of req.messages) n += countTokens(m.content) + 1;
  return n;
}

/**
 * `local/echo`: a deterministic stand-in for a language model that streams
 * the user's last message back, token by token, at a fixed pace. Honours
 * `max_tokens` (finish `length`) and `stop` sequences; reports usage.
 */
export async function* echoGenerate(
  req: GenerateRequest,
  ctx: ProviderContext,
  opts: EchoOptions,
): AsyncGenerator<ChunkPayload> {
  let text = echoText(req);
  let reason = FinishReason.REASON_STOP;
  for (const s of req.stop) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0) text = text.slice(0, at);
  }
  let tokens = splitTokens(text);
  if (req.maxTokens !== undefined && tokens.length > req.maxTokens) {
    tokens = tokens.slice(0, req.maxTokens);
    reason = FinishReason.REASON_LENGTH;
  }
  let out = 0;
  for (const t of tokens) {
    if (opts.tokenDelayMs > 0) await sleep(opts.tokenDelayMs, undefined, { signal: ctx.signal });
    ctx.signal.throwIfAborted();
    out++;
    yield textPayload(t);
  }
  yield usagePayload({ inputTokens: promptTokens(req), outputTokens: out });
  yield finishPayload(reason);
}
