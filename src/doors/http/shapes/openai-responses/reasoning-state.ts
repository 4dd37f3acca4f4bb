/**
 * A reasoning item's `encrypted_content` when the reasoning did not come
 * from OpenAI: the Responses API has no field for an Anthropic `thinking`
 * signature, a `redacted_thinking` block's data or a Gemini thought
 * signature, yet each must come back unchanged on the next turn (Anthropic
 * refuses a tool result after thinking without its signed block; Gemini 3
 * wants its signatures back). `encrypted_content` is the field Responses
 * clients already keep and send back as it came, opaque, so the gateway
 * carries these there in an envelope of its own: `spw1.` and the base64url
 * of `{"s": signature, "e": encrypted}`. OpenAI's own encrypted content
 * (an item with the upstream's `rs_…` id and no signature) stays as OpenAI
 * sent it.
 */

const PREFIX = "spw1.";

/** What a reasoning block needs to be sent back to the provider that made it. */
export interface ReasoningState {
  readonly signature: string;
  readonly encrypted: string;
}

/**
 * The `encrypted_content` for a reasoning item: the envelope when the block
 * has a signature, or encrypted data that is not an OpenAI item's (no
 * upstream id); the encrypted data as it came otherwise; undefined for none.
 */
export function reasoningContent(state: ReasoningState, upstreamId: boolean): string | undefined {
  if (state.signature || (state.encrypted && !upstreamId)) {
    return PREFIX + Buffer.from(JSON.stringify({ s: state.signature, e: state.encrypted })).toString("base64url");
  }
  return state.encrypted || undefined;
}

/** The state in a client's `encrypted_content`: the envelope's, else undefined (OpenAI's own, or not ours). */
export function readReasoningContent(content: string): ReasoningState | undefined {
  if (!content.startsWith(PREFIX)) return undefined;
  try {
    const j = JSON.parse(Buffer.from(content.slice(PREFIX.length), "base64url").toString("utf8")) as unknown;
    if (typeof j !== "object" || j === null) return undefined;
    const { s, e } = j as { s?: unknown; e?: unknown };
    return { signature: typeof s === "string" ? s : "", encrypted: typeof e === "string" ? e : "" };
  } catch {
    return undefined;
  }
}
