import type { ContentPart, FilePart, ImagePart, Message } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { base64, dataUrl } from "../shared/request-fields.js";

/** An OpenAI content part (chat or Responses) as sent upstream. */
export type OpenAiPart = Record<string, unknown>;

/** The URL OpenAI takes for an image: its bytes as a `data:` URL, or its URL as given; a 400 naming `where` when it has neither. */
export function imageUrl(image: ImagePart, where: string): string {
  if (image.data.length > 0) return dataUrl(image.mediaType || "image/png", image.data);
  if (!image.url) throw invalidArgument(`Invalid '${where}': an image needs its data or a URL.`, where);
  return image.url;
}

/** A file's bytes as the `data:` URL OpenAI's `file_data` takes. */
function fileData(file: FilePart): string {
  return dataUrl(file.mediaType || "application/pdf", file.data);
}

/** Where a part sits, for errors: `messages[i].content[j]`. */
const at = (i: number, j: number): string => `messages[${i}].content[${j}]`;

/**
 * One typed part as a chat completions content part. Reasoning blocks are
 * dropped (chat completions takes none back; DeepSeek refuses its own
 * `reasoning_content` in input) and so are cache markers (OpenAI caches by
 * itself). A plain-text document becomes a text part; a file only by URL
 * cannot be sent (chat completions takes files inline or by id) and is a 400.
 */
function chatPart(p: ContentPart, i: number, j: number): OpenAiPart | undefined {
  const part = p.part;
  switch (part?.$case) {
    case "text":
      return part.value ? { type: "text", text: part.value } : undefined;
    case "refusal":
      return { type: "refusal", refusal: part.value };
    case "image":
      return { type: "image_url", image_url: { url: imageUrl(part.value, at(i, j)), ...(part.value.detail ? { detail: part.value.detail } : {}) } };
    case "inputAudio":
      return { type: "input_audio", input_audio: { data: base64(part.value.data), format: part.value.format } };
    case "file": {
      const f = part.value;
      if (f.text) return { type: "text", text: f.text };
      if (f.data.length === 0 && !f.fileId) {
        throw invalidArgument(`Invalid '${at(i, j)}': OpenAI-compatible chat models take files inline (base64) or by file id, not by URL.`, at(i, j));
      }
      const file: Record<string, unknown> = {};
      if (f.fileId) file["file_id"] = f.fileId;
      if (f.data.length > 0) file["file_data"] = fileData(f);
      if (f.filename) file["filename"] = f.filename;
      return { type: "file", file };
    }
    case "reasoning":
    case undefined:
      return undefined;
  }
}

/**
 * A message's content for chat completions: its text (`content`) when it
 * has no typed parts or only text ones, else the parts. Tool results take
 * text only: a non-text part there is a 400 naming it, not dropped.
 */
export function chatContent(m: Message, i: number): string | OpenAiPart[] {
  if (m.contents.length === 0) return m.content;
  const parts = m.contents.flatMap((p, j) => {
    const out = chatPart(p, i, j);
    if (out && m.role === "tool" && out["type"] !== "text") {
      throw invalidArgument(`Invalid '${at(i, j)}': OpenAI-compatible models take only text in tool results.`, at(i, j));
    }
    return out ? [out] : [];
  });
  if (parts.every((p) => p["type"] === "text")) return parts.map((p) => p["text"] as string).join("");
  return parts;
}

/**
 * One typed part as a Responses API input part (`input_text` or, for the
 * assistant, `output_text`; `input_image`; `input_file`). Reasoning parts
 * are not content here (they are items, see responses-body.ts); audio is
 * never asked for, since requests with audio do not fit the Responses API.
 */
export function responsesPart(p: ContentPart, role: string, where: string): OpenAiPart | undefined {
  const part = p.part;
  switch (part?.$case) {
    case "text":
      return part.value ? { type: role === "assistant" ? "output_text" : "input_text", text: part.value } : undefined;
    case "refusal":
      return { type: "refusal", refusal: part.value };
    case "image":
      return { type: "input_image", image_url: imageUrl(part.value, where), detail: part.value.detail || "auto" };
    case "file": {
      const f = part.value;
      if (f.text) return { type: "input_text", text: f.text };
      if (f.data.length === 0 && !f.fileId && !f.url) throw invalidArgument(`Invalid '${where}': a file needs its data, a URL or a file id.`, where);
      const file: OpenAiPart = { type: "input_file" };
      if (f.fileId) file["file_id"] = f.fileId;
      if (f.data.length > 0) file["file_data"] = fileData(f);
      else if (f.url) file["file_url"] = f.url;
      if (f.filename) file["filename"] = f.filename;
      return file;
    }
    case "inputAudio":
    case "reasoning":
    case undefined:
      return undefined;
  }
}
