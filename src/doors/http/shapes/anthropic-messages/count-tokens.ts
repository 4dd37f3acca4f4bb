import type { GenerateRequest } from "../../../../gen/spillway/v1/request.js";

/** Tokens counted for an image or a binary document whose size the gateway does not measure. */
export const ATTACHMENT_TOKENS = 1_600;

const chars = (s: string): number => Math.ceil(s.length / 4);

/**
 * The gateway's estimate of a request's input tokens, for
 * `POST /v1/messages/count_tokens` and `message_start`, whatever the
 * provider (no upstream is asked): one token per 4 characters of every text
 * (system, messages, reasoning carried back, tool calls and results, tool
 * names, descriptions and schemas as JSON), plus 4 per message and 1,600
 * ({@link ATTACHMENT_TOKENS}) per image or binary document. A rule of thumb
 * that is usually within a few tens of percent of a real tokenizer for
 * English text and code; the real count arrives with the response's usage.
 */
export function estimateInputTokens(req: GenerateRequest): number {
  let n = 0;
  for (const m of req.messages) {
    n += 4;
    if (m.contents.length === 0) n += chars(m.content);
    for (const p of m.contents) {
      const part = p.part;
      switch (part?.$case) {
        case "text":
        case "refusal":
          n += chars(part.value);
          break;
        case "reasoning":
          n += chars(part.value.text) + chars(part.value.encrypted) / 4;
          break;
        case "file":
          n += part.value.text ? chars(part.value.text) : ATTACHMENT_TOKENS;
          break;
        case "image":
        case "inputAudio":
          n += ATTACHMENT_TOKENS;
          break;
        default:
          break;
      }
    }
    for (const c of m.toolCalls) n += chars(c.name) + chars(c.arguments);
  }
  for (const t of req.tools) n += chars(t.name) + chars(t.description) + chars(JSON.stringify(t.parameters ?? {}));
  return Math.max(1, Math.round(n));
}
