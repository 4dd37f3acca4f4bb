import { randomUUID } from "node:crypto";

/** The file part of a {@link streamMultipart} body. */
export interface MultipartFilePart {
  readonly field: string;
  readonly filename: string;
  readonly mimeType: string;
  /** Its bytes, sent as they arrive. */
  readonly data: AsyncIterable<Uint8Array>;
}

/** A streamed `multipart/form-data` body (an undici request body; see `upstreamRequest`). */
export interface StreamedMultipart {
  readonly contentType: string;
  /** The body's bytes, produced as they are pulled; one reader. */
  readonly body: AsyncIterable<Uint8Array>;
}

/** Quotes a header parameter value: no quotes or line breaks may pass through. */
function quoted(s: string): string {
  return `"${s.replace(/["\\\r\n]/g, "_")}"`;
}

/**
 * Builds a `multipart/form-data` request body that streams: the text fields
 * first, then the file's bytes as they arrive, pulled only as fast as the
 * upstream socket takes them, then the fields `after` gives once the file's
 * bytes have ended (fields its caller learned during the upload; multipart
 * has no order, and OpenAI reads fields after the file as the openai SDK
 * writes them). A failing `data` or `after` fails the body, so the request
 * is aborted rather than sent short.
 */
export function streamMultipart(
  fields: ReadonlyArray<readonly [string, string]>,
  file: MultipartFilePart,
  after?: () => Promise<ReadonlyArray<readonly [string, string]>>,
): StreamedMultipart {
  const boundary = `spillway-${randomUUID()}`;
  const enc = new TextEncoder();
  async function* parts(): AsyncGenerator<Uint8Array> {
    for (const [name, value] of fields) {
      yield enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name=${quoted(name)}\r\n\r\n${value}\r\n`);
    }
    yield enc.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(file.field)}; filename=${quoted(file.filename)}\r\nContent-Type: ${file.mimeType.replace(/[\r\n]/g, "")}\r\n\r\n`,
    );
    yield* file.data;
    let tail = "\r\n";
    for (const [name, value] of (await after?.()) ?? []) {
      tail += `--${boundary}\r\nContent-Disposition: form-data; name=${quoted(name)}\r\n\r\n${value}\r\n`;
    }
    yield enc.encode(`${tail}--${boundary}--\r\n`);
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: parts() };
}
