import type { CacheControl, ContentPart, FilePart, ImagePart, Message } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { base64, parseDataUrl } from "../shared/request-fields.js";

/** An Anthropic content block as sent upstream. */
export type Block = Record<string, unknown>;

/** Where a part sits, for errors: `messages[i].content[j]`. */
const at = (i: number, j: number): string => `messages[${i}].content[${j}]`;

/** Anthropic's `cache_control` for a marker; `ephemeral` when the type is not given. */
export function cacheControl(c: CacheControl | undefined): Block | undefined {
  if (!c) return undefined;
  return { type: c.type || "ephemeral", ...(c.ttl ? { ttl: c.ttl } : {}) };
}

function imageBlock(image: ImagePart, where: string): Block {
  if (image.data.length > 0) return { type: "image", source: { type: "base64", media_type: image.mediaType || "image/png", data: base64(image.data) } };
  const inline = parseDataUrl(image.url);
  if (inline) return { type: "image", source: { type: "base64", media_type: inline.mediaType, data: inline.base64 } };
  if (/^https?:\/\//.test(image.url)) return { type: "image", source: { type: "url", url: image.url } };
  throw invalidArgument(`Invalid '${where}': Anthropic models take images as http(s) URLs, base64 data or data: URLs.`, where);
}

/**
 * A file as an Anthropic `document` block: a plain-text document as a
 * `text` source, bytes as a base64 source (PDF; `text/plain` bytes become a
 * text source, since Anthropic takes base64 only for PDFs), a URL as a `url`
 * source, an uploaded file's id as a `file` source (Anthropic's Files API,
 * which needs its `anthropic-beta` header from the client). Title, context
 * and citations pass through.
 */
function documentBlock(f: FilePart, where: string): Block {
  let source: Block;
  const inline = parseDataUrl(f.url);
  if (f.text) source = { type: "text", media_type: "text/plain", data: f.text };
  else if (f.data.length > 0 && f.mediaType.startsWith("text/")) source = { type: "text", media_type: "text/plain", data: Buffer.from(f.data).toString("utf8") };
  else if (f.data.length > 0) source = { type: "base64", media_type: f.mediaType || "application/pdf", data: base64(f.data) };
  else if (inline) source = { type: "base64", media_type: inline.mediaType, data: inline.base64 };
  else if (f.fileId) source = { type: "file", file_id: f.fileId };
  else if (/^https?:\/\//.test(f.url)) source = { type: "url", url: f.url };
  else throw invalidArgument(`Invalid '${where}': a document needs its data, text, an http(s) URL or a file id.`, where);
  const block: Block = { type: "document", source };
  if (f.title) block["title"] = f.title;
  else if (f.filename) block["title"] = f.filename;
  if (f.context) block["context"] = f.context;
  if (f.citations) block["citations"] = { enabled: true };
  return block;
}

/**
 * A reasoning part of an earlier assistant turn as Anthropic takes it back:
 * `thinking` with its signature, or `redacted_thinking` with its data.
 * Reasoning Anthropic did not make (no signature: an OpenAI summary or
 * encrypted item, which carry an `rs_…` id) would be refused and is left out.
 */
function reasoningBlock(p: ContentPart & { part: { $case: "reasoning" } }): Block | undefined {
  const r = p.part.value;
  if (r.signature) return { type: "thinking", thinking: r.text, signature: r.signature };
  if (r.encrypted && !r.id) return { type: "redacted_thinking", data: r.encrypted };
  return undefined;
}

/** One typed part as an Anthropic block (without its cache marker); undefined for parts left out. */
function block(p: ContentPart, i: number, j: number): Block | undefined {
  const part = p.part;
  switch (part?.$case) {
    case "text":
    case "refusal":
      return part.value ? { type: "text", text: part.value } : undefined;
    case "image":
      return imageBlock(part.value, at(i, j));
    case "file":
      return documentBlock(part.value, at(i, j));
    case "reasoning":
      return reasoningBlock(p as ContentPart & { part: { $case: "reasoning" } });
    case "inputAudio":
      throw invalidArgument(`Invalid '${at(i, j)}': Anthropic models take no audio input.`, at(i, j));
    case undefined:
      return undefined;
  }
}

/**
 * A message's content as Anthropic blocks, in order, each with its
 * `cache_control` when the part has one (but thinking blocks, which take none); a message without typed parts is
 * its text. Empty text is left out (Anthropic refuses empty text blocks).
 */
export function contentBlocks(m: Message, i: number): Block[] {
  if (m.contents.length === 0) return m.content ? [{ type: "text", text: m.content }] : [];
  return m.contents.flatMap((p, j) => {
    const b = block(p, i, j);
    if (!b) return [];
    // Thinking blocks take no cache marker (Anthropic refuses one); the marker of the block after them caches them too.
    const cc = b["type"] === "thinking" || b["type"] === "redacted_thinking" ? undefined : cacheControl(p.cacheControl);
    return [cc ? { ...b, cache_control: cc } : b];
  });
}
