import { isObj } from "../shared/json.js";

/** A string no upstream sends as content, put where the content was to check a learned template. */
const PROBE = "\u0001spillway-template-probe\u0001";

/**
 * The bytes around the content of a pure content chunk of one stream
 * (`{"id":…,"choices":[{"index":0,"delta":{"content":` … `},…}]}`): most
 * OpenAI-compatible servers send every content chunk of a stream with the
 * same bytes around a different string. A chunk that is exactly
 * `prefix + <one JSON string> + suffix` is then the learned chunk with other
 * content, so its content is read without JSON.parse (the largest per-chunk
 * cost of the stream mapper) and it maps to exactly what the full mapping
 * would give: one text payload. Anything else (usage, finish, tool calls, a
 * server whose chunks differ in more than the content) misses and takes
 * the full path.
 */
export class ContentTemplate {
  private constructor(
    private readonly prefix: string,
    private readonly suffix: string,
  ) {}

  /**
   * Learns the template from a chunk's data whose parsed form is a pure
   * content chunk (the caller checked: `choices[0].delta` is `{"content":
   * <content>}`, no finish reason, usage or error). Undefined when the
   * content's JSON does not appear exactly once in the data as
   * `JSON.stringify` writes it, or the bytes around it do not parse back to
   * the content's place.
   */
  static learn(data: string, content: string): ContentTemplate | undefined {
    const literal = JSON.stringify(content);
    const at = data.indexOf(literal);
    if (at < 0 || data.indexOf(literal, at + 1) >= 0) return undefined;
    const prefix = data.slice(0, at);
    const suffix = data.slice(at + literal.length);
    let probe: unknown;
    try {
      probe = JSON.parse(`${prefix}${JSON.stringify(PROBE)}${suffix}`);
    } catch {
      return undefined;
    }
    const choices = isObj(probe) ? probe["choices"] : undefined;
    const c: unknown = Array.isArray(choices) ? choices[0] : undefined;
    const d = isObj(c) ? c["delta"] : undefined;
    if (!isObj(d) || d["content"] !== PROBE || Object.keys(d).length !== 1) return undefined;
    return new ContentTemplate(prefix, suffix);
  }

  /** The content of `data` when it is this template around one JSON string; undefined otherwise. */
  match(data: string): string | undefined {
    const { prefix, suffix } = this;
    const end = data.length - suffix.length;
    if (end - prefix.length < 2 || !data.startsWith(prefix) || !data.endsWith(suffix)) return undefined;
    return jsonString(data, prefix.length, end);
  }
}

/** The value of the JSON string token `data[from, to)`, or undefined when it is not exactly one. */
function jsonString(data: string, from: number, to: number): string | undefined {
  if (data.charCodeAt(from) !== 34 || data.charCodeAt(to - 1) !== 34) return undefined;
  for (let i = from + 1; i < to - 1; i++) {
    const ch = data.charCodeAt(i);
    // A quote, a backslash (escapes) or a control character: let JSON.parse judge the token.
    if (ch === 34 || ch === 92 || ch < 32) {
      try {
        const v: unknown = JSON.parse(data.slice(from, to));
        return typeof v === "string" ? v : undefined;
      } catch {
        return undefined;
      }
    }
  }
  return data.slice(from + 1, to - 1);
}
