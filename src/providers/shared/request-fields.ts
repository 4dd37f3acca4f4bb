import type { GenerateRequest, Message } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { isObj } from "./json.js";

/** The wire families `GenerateRequest.extra` is keyed by. */
export type WireFamily = "openai" | "anthropic";

/**
 * The pass-through fields of `family` (`extra.openai`, `extra.anthropic`):
 * what a request of that family's shape carried that no typed field covers,
 * to be merged into that family's upstream bodies only. Empty when absent.
 */
export function familyExtra(req: GenerateRequest, family: WireFamily): Record<string, unknown> {
  const own: unknown = req.extra?.[family];
  return isObj(own) ? own : {};
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** Splits a base64 `data:` URL into its media type and base64 text; undefined for anything else. */
export function parseDataUrl(url: string): { mediaType: string; base64: string } | undefined {
  const m = DATA_URL.exec(url);
  return m ? { mediaType: m[1]!, base64: m[2]! } : undefined;
}

/** A base64 `data:` URL of `bytes`. */
export function dataUrl(mediaType: string, bytes: Uint8Array): string {
  return `data:${mediaType || "application/octet-stream"};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}`;
}

/** `bytes` as base64 text. */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * The arguments of each of `m`'s tool calls as a JSON object (`{}` when
 * empty), for vendors whose wire format carries them parsed (Anthropic,
 * Bedrock, Gemini); anything else is a 400 naming `messages[i].tool_calls[j]`
 * and `vendor`.
 */
export function toolCallObjects(m: Message, i: number, vendor: string): Array<{ id: string; name: string; input: Record<string, unknown> }> {
  return m.toolCalls.map((c, j) => {
    let input: unknown = {};
    if (c.arguments.trim()) {
      try {
        input = JSON.parse(c.arguments);
      } catch {
        input = undefined;
      }
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      const at = `messages[${i}].tool_calls[${j}].function.arguments`;
      throw invalidArgument(`Invalid '${at}': ${vendor} models need tool call arguments as a JSON object.`, at);
    }
    return { id: c.id, name: c.name, input: input as Record<string, unknown> };
  });
}
