import { randomUUID } from "node:crypto";

/** The file part of a {@link streamMultipart} body. */
export interface MultipartFilePart {
  readonly field: string;
  readonly filename: string;
  readonly mimeType: string;
  /** Its bytes, sent as they arrive. */
  readonly data: AsyncIterable<Uint8Array>;
}

/** A streamed `multipart/form-data` body for fetch (`duplex: "half"`). */
export interface StreamedMultipart {
  readonly contentType: string;
  readonly body: ReadableStream<Uint8Array>;
}

/** Quotes a header parameter value: no quotes or line breaks may pass through. */
function quoted(s: string): string {
  return `"${s.replace(/["\\\r\n]/g, "_")}"`;
}

/**
 * Builds a `multipart/form-data` request body that streams: the text fields
 * first, then the file's bytes as they arrive, pulled only as fast as the
 * upstream socket takes them.
 */
export function streamMultipart(fields: ReadonlyArray<readonly [string, string]>, file: MultipartFilePart): StreamedMultipart {
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
    yield enc.encode(`\r\n--${boundary}--\r\n`);
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: ReadableStream.from(parts()) };
}
