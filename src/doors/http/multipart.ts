import busboy from "busboy";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { HttpExchange } from "./exchange.js";

/** The file part of a multipart form, held in memory (within the upload limit). */
export interface UploadedFile {
  /** The form field that carried it (`file`). */
  readonly field: string;
  readonly filename: string;
  readonly mimeType: string;
  /** Its bytes, in the pieces they arrived in. */
  readonly chunks: readonly Buffer[];
  readonly size: number;
}

/** A parsed multipart form. */
export interface MultipartForm {
  /** Text fields; repeated names (`include[]`) keep every value. */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /** The first file part, if any. */
  readonly file: UploadedFile | undefined;
}

/** Limits of {@link readMultipart}. */
export interface MultipartLimits {
  /** Largest body (bytes); a larger upload is refused with 413 before the rest is read. */
  readonly maxBytes: number;
  /** Most text fields. Default 64. */
  readonly maxFields?: number;
  /** Largest text field (bytes). Default 64 KiB. */
  readonly maxFieldBytes?: number;
}

const MULTIPART = /^multipart\/form-data\s*;/i;

/**
 * Reads a `multipart/form-data` body with busboy as it arrives. Must be
 * called before the handler's first `await` (uWS hands body data only to a
 * handler registered at once). The body is parsed chunk by chunk and never
 * held beyond `maxBytes`: an upload declared or found larger fails with 413
 * at once, without reading the rest. The form is complete when the promise
 * resolves, since fields may follow the file (the openai SDK sends `file`
 * first). Anything but a multipart body is a 415; a malformed one a 400.
 */
export function readMultipart(ex: HttpExchange, limits: MultipartLimits): Promise<MultipartForm> {
  if (!MULTIPART.test(ex.rawContentType)) {
    return Promise.reject(
      new SpillwayError(
        Code.InvalidArgument,
        `Unsupported Content-Type '${ex.contentType || "(none)"}': send the audio as multipart/form-data.`,
        { httpStatus: 415, reason: "unsupported_media_type" },
      ),
    );
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": ex.rawContentType },
      limits: {
        fileSize: limits.maxBytes,
        files: 1,
        fields: limits.maxFields ?? 64,
        fieldSize: limits.maxFieldBytes ?? 64 * 1024,
      },
    });
  } catch (e) {
    return Promise.reject(malformed((e as Error).message));
  }
  const fields = new Map<string, string[]>();
  let file: UploadedFile | undefined;
  return new Promise<MultipartForm>((resolve, reject) => {
    let failed = false;
    const fail = (err: SpillwayError): void => {
      if (failed) return;
      failed = true;
      reject(err);
    };
    parser.on("field", (name, value, info) => {
      if (info.valueTruncated) fail(malformed(`the form field '${name}' is too long`));
      const list = fields.get(name) ?? [];
      list.push(value);
      fields.set(name, list);
    });
    parser.on("file", (name, stream, info) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("data", (c: Buffer) => {
        chunks.push(c);
        size += c.length;
      });
      stream.on("end", () => {
        file ??= { field: name, filename: info.filename ?? "", mimeType: info.mimeType, chunks, size };
      });
    });
    parser.on("filesLimit", () => fail(malformed("send one file per request")));
    parser.on("fieldsLimit", () => fail(malformed("the form has too many fields")));
    parser.on("error", (e: Error) => fail(malformed(e.message)));
    parser.on("close", () => {
      if (!failed) resolve({ fields, file });
    });
    ex.streamBody(limits.maxBytes, (chunk) => {
      if (!failed) parser.write(chunk);
    }).then(
      () => parser.end(),
      (e: unknown) => {
        fail(SpillwayError.from(e));
        parser.destroy();
      },
    );
  });
}

function malformed(detail: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, `The multipart form could not be read: ${detail}.`, {
    reason: "invalid_multipart",
  });
}
