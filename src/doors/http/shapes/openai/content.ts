import type { ContentPart, FilePart, ImagePart } from "../../../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../../../engine/errors.js";

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(.*)$/s;

/** The bytes and media type of a base64 `data:` URL, or `undefined` for any other URL. */
export function decodeDataUrl(url: string): { mediaType: string; data: Buffer } | undefined {
  const m = DATA_URL.exec(url);
  if (!m) return undefined;
  return { mediaType: m[1] ?? "application/octet-stream", data: Buffer.from(m[2]!, "base64") };
}

/** A text content part. */
export function textPart(text: string): ContentPart {
  return { part: { $case: "text", value: text } };
}

/**
 * An image part from an OpenAI image URL (`https://…` or a base64 `data:`
 * URL, whose bytes are decoded so every provider gets them typed).
 */
export function imagePart(url: string, detail: string | null | undefined): ContentPart {
  const inline = decodeDataUrl(url);
  const image: ImagePart = inline
    ? { url: "", data: inline.data, mediaType: inline.mediaType, detail: detail ?? "" }
    : { url, data: Buffer.alloc(0), mediaType: "", detail: detail ?? "" };
  return { part: { $case: "image", value: image } };
}

/** A file part from OpenAI's `file_data` (a data URL or bare base64), `file_id` or `file_url`. */
export function filePart(f: { file_data?: string | undefined; file_id?: string | undefined; filename?: string | undefined; file_url?: string | undefined }, at: string): ContentPart {
  const file: FilePart = {
    url: f.file_url ?? "",
    data: Buffer.alloc(0),
    mediaType: "",
    filename: f.filename ?? "",
    fileId: f.file_id ?? "",
    text: "",
    title: "",
    context: "",
    citations: false,
  };
  if (f.file_data) {
    const inline = decodeDataUrl(f.file_data);
    file.data = inline ? inline.data : Buffer.from(f.file_data, "base64");
    file.mediaType = inline?.mediaType ?? (f.filename?.toLowerCase().endsWith(".pdf") ? "application/pdf" : "");
  }
  if (!f.file_data && !f.file_id && !f.file_url) {
    throw invalidArgument(`Invalid '${at}': a file part needs 'file_data', 'file_id' or 'file_url'.`, at);
  }
  return { part: { $case: "file", value: file } };
}

/** An input-audio part from OpenAI's base64 `input_audio`. */
export function audioPart(data: string, format: string): ContentPart {
  return { part: { $case: "inputAudio", value: { data: Buffer.from(data, "base64"), format } } };
}

/** The text of parts joined (refusals count as text), for `Message.content`. */
export function joinedText(parts: readonly ContentPart[]): string {
  let out = "";
  for (const p of parts) {
    if (p.part?.$case === "text" || p.part?.$case === "refusal") out += p.part.value;
  }
  return out;
}
