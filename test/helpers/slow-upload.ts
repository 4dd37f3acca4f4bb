/**
 * A raw HTTP client for uploads sent in parts, each part only when the test
 * says (e.g. after the first transcript event arrived), reading the
 * response — head and SSE events — while the body is still being sent. With
 * it a test proves an ordering (text came back before the rest of the
 * audio was sent) without measuring time.
 */
import { request, type IncomingHttpHeaders } from "node:http";

/** A text field or the file part of a multipart form. */
export type FormPart = { readonly name: string; readonly value: string } | { readonly name: string; readonly filename: string; readonly type: string };

/**
 * A multipart body around one file whose bytes the caller sends itself:
 * `head` is every part before the file's data (its own headers included),
 * `tail` ends the file part and holds the parts after it.
 */
export function multipartAround(parts: readonly FormPart[], boundary = "slow-upload-boundary"): { contentType: string; head: Buffer; tail: Buffer } {
  let head = "";
  let tail = "";
  let afterFile = false;
  for (const p of parts) {
    if ("filename" in p) {
      head += `--${boundary}\r\ncontent-disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\ncontent-type: ${p.type}\r\n\r\n`;
      afterFile = true;
      continue;
    }
    const text = `--${boundary}\r\ncontent-disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`;
    if (afterFile) tail += text;
    else head += text;
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, head: Buffer.from(head), tail: Buffer.from(`\r\n${tail}--${boundary}--\r\n`) };
}

/** One upload in progress. */
export interface SlowUpload {
  /** Resolves with the status and headers once the response head arrived. */
  readonly head: Promise<{ status: number; headers: IncomingHttpHeaders }>;
  /** The `data:` of each SSE event received so far, parsed as JSON (`[DONE]` as the string). */
  readonly events: unknown[];
  /** Resolves with the first event (received so far or later) that `match` accepts. */
  waitForEvent(match: (e: any) => boolean): Promise<any>;
  /** Sends more of the body; false when the socket is full (see {@link SlowUpload.drain}). */
  send(data: Buffer | string): boolean;
  /** Resolves when the socket can take more after `send` returned false. */
  drain(): Promise<void>;
  /** Ends the body (with a last piece). */
  end(data?: Buffer | string): void;
  /** Closes the connection, as a client that goes away. */
  destroy(): void;
  /** Body bytes written so far. */
  readonly sent: () => number;
  /** Resolves with the whole response body once it ended or the connection closed. */
  readonly done: Promise<{ status: number; body: string; complete: boolean }>;
}

/**
 * Starts a POST with `headers` (no content-length: chunked, unless given)
 * and sends nothing of the body yet.
 */
export function startUpload(url: string, headers: Record<string, string>): SlowUpload {
  const events: unknown[] = [];
  const waiters: Array<{ match: (e: any) => boolean; resolve: (e: any) => void }> = [];
  let sent = 0;
  let body = "";
  let buffered = "";
  let status = 0;
  let resolveHead!: (h: { status: number; headers: IncomingHttpHeaders }) => void;
  let rejectHead!: (e: unknown) => void;
  const head = new Promise<{ status: number; headers: IncomingHttpHeaders }>((res, rej) => {
    resolveHead = res;
    rejectHead = rej;
  });
  // A test that destroys the upload before the head came need not await it.
  head.catch(() => undefined);
  let resolveDone!: (r: { status: number; body: string; complete: boolean }) => void;
  const done = new Promise<{ status: number; body: string; complete: boolean }>((r) => (resolveDone = r));
  const onEvent = (data: string): void => {
    let e: unknown = data;
    try {
      e = JSON.parse(data);
    } catch {
      // `[DONE]` stays a string.
    }
    events.push(e);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.match(e)) waiters.splice(i, 1)[0]!.resolve(e);
    }
  };
  const req = request(url, { method: "POST", headers });
  req.on("error", (e) => {
    rejectHead(e);
    resolveDone({ status, body, complete: false });
  });
  req.on("response", (res) => {
    status = res.statusCode ?? 0;
    resolveHead({ status, headers: res.headers });
    res.setEncoding("utf8");
    res.on("data", (text: string) => {
      body += text;
      buffered += text;
      let at: number;
      while ((at = buffered.indexOf("\n\n")) >= 0) {
        const frame = buffered.slice(0, at);
        buffered = buffered.slice(at + 2);
        const data = frame
          .split("\n")
          .filter((l) => l.startsWith("data: "))
          .map((l) => l.slice(6))
          .join("\n");
        if (data) onEvent(data);
      }
    });
    res.on("end", () => resolveDone({ status, body, complete: true }));
    res.on("error", () => resolveDone({ status, body, complete: false }));
    res.on("close", () => resolveDone({ status, body, complete: res.complete }));
  });
  req.flushHeaders();
  return {
    head,
    events,
    waitForEvent: (match) => {
      const seen = events.find(match);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
    send: (data) => {
      sent += data.length;
      return req.write(data);
    },
    drain: () => new Promise<void>((r) => req.once("drain", () => r())),
    end: (data) => {
      if (data) sent += data.length;
      req.end(data);
    },
    destroy: () => req.destroy(),
    sent: () => sent,
    done,
  };
}

/**
 * A `fetch` for the openai SDK (its `fetch` option) over node:http that
 * sends the request body up to the end of the first occurrence of `marker`
 * and the rest only once `gate` resolves, while handing the SDK the response as
 * soon as its head arrives. (undici's fetch sends request bodies half
 * duplex: it would not show a response before the whole body was sent.)
 */
export function gatedFetch(marker: Uint8Array, gate: Promise<unknown>): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const body = Buffer.from(await req.arrayBuffer());
    const found = body.indexOf(marker);
    if (found < 0) throw new Error("gatedFetch: the marker is not in the body");
    const at = found + marker.length;
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => (headers[k] = v));
    headers["content-length"] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const r = request(req.url, { method: req.method, headers });
      r.on("error", reject);
      r.on("response", (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
        const stream = new ReadableStream<Uint8Array>({
          start(c) {
            res.on("data", (d: Buffer) => c.enqueue(new Uint8Array(d)));
            res.on("end", () => c.close());
            res.on("error", (e) => c.error(e));
          },
          cancel: () => void res.destroy(),
        });
        resolve(new Response(stream, { status: res.statusCode ?? 0, headers: h }));
      });
      r.write(body.subarray(0, at));
      void gate.then(() => r.end(body.subarray(at)));
    });
  };
}
