import { channel } from "node:diagnostics_channel";
import busboy from "busboy";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { HttpExchange } from "./exchange.js";
import { UPLOAD_HIGH_WATER, UploadQueue } from "./upload-queue.js";

/** The file part of a form being read: its headers at once, its bytes as they arrive. */
export interface FilePart {
  /** The form field that carried it (`file`). */
  readonly field: string;
  readonly filename: string;
  readonly mimeType: string;
  /**
   * Its bytes, as they arrive (one reader). Bytes not read yet wait in
   * memory, bounded by the upload limit: a reader that starts late (once
   * the form is complete) gets them all. Once the reader has begun, a
   * backlog over `highWaterBytes` pauses the client's upload until it is
   * read. Ends at the end of the part; throws the form's error (413,
   * malformed, client gone) as soon as it happens, dropping what was not
   * read.
   */
  readonly bytes: AsyncIterable<Buffer>;
  /** Bytes of the part received so far. */
  readonly size: () => number;
  /**
   * The text fields that came before this part in the form. (By the time a
   * handler looks, later fields of the same network read may be parsed
   * already; this does not depend on how the body was cut into reads.)
   */
  readonly fieldsBefore: ReadonlyMap<string, readonly string[]>;
}

/** A multipart form while it arrives (see {@link openMultipart}). */
export interface MultipartReader {
  /** Text fields received so far; grows as the form arrives. Repeated names keep every value. */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /**
   * Resolves when the first file part begins (the fields sent before it are
   * in {@link fields} by then), or with undefined when the form ends without
   * one; rejects when the form fails first.
   */
  readonly file: Promise<FilePart | undefined>;
  /** Resolves when the whole form has been read; rejects with its error (413, 400, 415, client gone). */
  readonly done: Promise<void>;
  /** The form's error once it has failed (set at once, before any promise settles), else undefined. */
  readonly error: () => SpillwayError | undefined;
}

/** Limits of {@link openMultipart}. */
export interface MultipartLimits {
  /** Largest body (bytes); a larger upload is refused with 413 before the rest is read. */
  readonly maxBytes: number;
  /** Most text fields. Default 64. */
  readonly maxFields?: number;
  /** Largest text field (bytes). Default 64 KiB. */
  readonly maxFieldBytes?: number;
  /**
   * Unread file bytes above which the client's upload is paused once the
   * file's reader has begun (see `UploadQueue`). Default 1 MiB.
   */
  readonly highWaterBytes?: number;
}

const MULTIPART = /^multipart\/form-data\s*;/i;

/**
 * Diagnostics channel on which an upload's flow control is published: `{
 * paused: true, queued }` when the client's upload is paused because its
 * reader lags (`queued` unread bytes), `{ paused: false, queued }` when it
 * resumes. For tests and debugging; nothing is published without pauses.
 */
export const UPLOAD_FLOW_CHANNEL = "spillway:upload:flow";
const flowChannel = channel(UPLOAD_FLOW_CHANNEL);

/**
 * Reads a `multipart/form-data` body with busboy as it arrives, exposing
 * each part as soon as it starts: fields as they come, the (one) file part
 * with its bytes streaming. Must be called before the handler's first
 * `await` (uWS hands body data only to a handler registered at once). The
 * body is never held beyond `maxBytes`: an upload declared or found larger
 * fails with 413 at once, without reading the rest. Anything but a
 * multipart body is a 415; a malformed one, or more than one file, a 400.
 */
export function openMultipart(ex: HttpExchange, limits: MultipartLimits): MultipartReader {
  const fields = new Map<string, string[]>();
  const failed = (e: SpillwayError): MultipartReader => {
    const rejected = Promise.reject(e);
    rejected.catch(() => undefined);
    return { fields, file: rejected, done: rejected, error: () => e };
  };
  if (!MULTIPART.test(ex.rawContentType)) {
    return failed(
      new SpillwayError(Code.InvalidArgument, `Unsupported Content-Type '${ex.contentType || "(none)"}': send the audio as multipart/form-data.`, {
        httpStatus: 415,
        reason: "unsupported_media_type",
      }),
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
    return failed(malformed((e as Error).message));
  }
  const file = settleable<FilePart | undefined>();
  const done = settleable<void>();
  let queue: UploadQueue | undefined;
  let error: SpillwayError | undefined;
  const fail = (err: SpillwayError): void => {
    if (error) return;
    error = err;
    queue?.fail(err);
    done.reject(err);
    // Before any file part `file` fails too (after it, it is settled already).
    file.reject(err);
  };
  parser.on("field", (name, value, info) => {
    if (info.valueTruncated) fail(malformed(`the form field '${name}' is too long`));
    const list = fields.get(name) ?? [];
    list.push(value);
    fields.set(name, list);
  });
  parser.on("file", (name, stream, info) => {
    // A reader slower than the client (an upstream that takes the file slowly) pauses the client's upload.
    const q: UploadQueue = new UploadQueue({
      pause: () => {
        if (flowChannel.hasSubscribers) flowChannel.publish({ paused: true, queued: q.queued });
        ex.pauseBody();
      },
      resume: () => {
        if (flowChannel.hasSubscribers) flowChannel.publish({ paused: false, queued: q.queued });
        ex.resumeBody();
      },
      highWater: limits.highWaterBytes ?? UPLOAD_HIGH_WATER,
    });
    queue = q;
    const fieldsBefore = new Map([...fields].map(([k, v]) => [k, [...v]] as const));
    stream.on("data", (c: Buffer) => q.push(c));
    stream.on("end", () => q.end());
    // A form cut short (the client gone, the parser destroyed) errors the part: the form fails, the process does not.
    stream.on("error", (e: Error) => fail(malformed(e.message)));
    file.resolve({ field: name, filename: info.filename ?? "", mimeType: info.mimeType, bytes: q, size: () => q.size, fieldsBefore });
  });
  parser.on("filesLimit", () => fail(malformed("send one file per request")));
  parser.on("fieldsLimit", () => fail(malformed("the form has too many fields")));
  parser.on("error", (e: Error) => fail(malformed(e.message)));
  parser.on("close", () => {
    if (error) return;
    queue?.end();
    file.resolve(undefined);
    done.resolve();
  });
  ex.streamBody(limits.maxBytes, (chunk) => {
    if (!error) parser.write(chunk);
  }).then(
    () => parser.end(),
    (e: unknown) => {
      fail(SpillwayError.from(e));
      parser.destroy();
    },
  );
  return { fields, file: file.promise, done: done.promise, error: () => error };
}

/** A promise with its settle functions; whoever awaits it sees a rejection, which is never unhandled. */
function settleable<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function malformed(detail: string): SpillwayError {
  return new SpillwayError(Code.InvalidArgument, `The multipart form could not be read: ${detail}.`, {
    reason: "invalid_multipart",
  });
}
