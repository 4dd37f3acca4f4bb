import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { GenerateRequest } from "../../gen/spillway/v1/request.js";
import {
  finishPayload,
  FinishReason,
  reasoningPayload,
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
 * The reasoning `local/echo` streams when asked to reason (`reasoning` with
 * an effort other than `none`, or a token budget, and not disabled), cut to
 * the budget when one is given; undefined when not asked.
 */
export function echoReasoning(req: GenerateRequest, answerTokens: number): string[] | undefined {
  const r = req.reasoning;
  if (!r || r.disabled || r.effort === "none" || (!r.effort && r.budgetTokens <= 0)) return undefined;
  const tokens = splitTokens(`The last user message has ${answerTokens} tokens, so the answer repeats it word for word.`);
  return r.budgetTokens > 0 ? tokens.slice(0, r.budgetTokens) : tokens;
}

/** The signature `local/echo` gives its reasoning: a SHA-256 of the text, base64 (deterministic). */
export function echoSignature(reasoning: string): string {
  return createHash("sha256").update(reasoning).digest("base64");
}

/**
 * `local/echo`: a deterministic stand-in for a language model that streams
 * the user's last message back, token by token, at a fixed pace. Honours
 * `max_tokens` (finish `length`; it limits the answer, not the reasoning)
 * and `stop` sequences (the one that cut the answer is the finish's
 * `stop_sequence`); reports usage. Asked to reason, it first streams
 * {@link echoReasoning} as one reasoning block, token by token, then its
 * {@link echoSignature}, and counts those tokens as `reasoning_tokens` (and
 * in the output tokens, as OpenAI and Anthropic do).
 */
export async function* echoGenerate(
  req: GenerateRequest,
  ctx: ProviderContext,
  opts: EchoOptions,
): AsyncGenerator<ChunkPayload> {
  let text = echoText(req);
  let reason = FinishReason.REASON_STOP;
  let matched = "";
  for (const s of req.stop) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0) {
      text = text.slice(0, at);
      matched = s;
    }
  }
  let tokens = splitTokens(text);
  if (req.maxTokens !== undefined && tokens.length > req.maxTokens) {
    tokens = tokens.slice(0, req.maxTokens);
    reason = FinishReason.REASON_LENGTH;
    matched = "";
  }
  let out = 0;
  const reasoning = echoReasoning(req, tokens.length);
  if (reasoning) {
    for (const t of reasoning) {
      if (opts.tokenDelayMs > 0) await sleep(opts.tokenDelayMs, undefined, { signal: ctx.signal });
      ctx.signal.throwIfAborted();
      yield reasoningPayload({ text: t });
    }
    yield reasoningPayload({ signature: echoSignature(reasoning.join("")) });
  }
  for (const t of tokens) {
    if (opts.tokenDelayMs > 0) await sleep(opts.tokenDelayMs, undefined, { signal: ctx.signal });
    ctx.signal.throwIfAborted();
    out++;
    yield textPayload(t);
  }
  const reasoningTokens = reasoning?.length ?? 0;
  yield usagePayload({ inputTokens: promptTokens(req), outputTokens: out + reasoningTokens, reasoningTokens });
  yield finishPayload(reason, matched);
}
