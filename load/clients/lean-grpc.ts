/**
 * The lean gRPC load client: `Generate` calls with the outcomes of
 * load/clients/grpc.ts on node:http2 itself — still a real HTTP/2 client
 * (HPACK, flow control, the gateway's grpc-js server on the other side) —
 * with the per-call work cut: the request message is encoded and framed
 * once, the request headers are one shared object, and of each response
 * message it reads only which `Chunk.payload` field it carries (a walk over
 * the top-level protobuf tags: `text` = 10, `finish` = 16, `error` = 17),
 * decoding a whole Chunk only for an in-band error. The status comes from
 * the trailers (or the headers of a trailers-only refusal): UNAVAILABLE (14)
 * with `spillway-retry-after-ms` is a refusal. grpc-js's client adds
 * interceptors, a call stream, metadata objects and a deserialize per
 * message on top: measured with load/loadgen-cost.ts.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import { Chunk } from "../../src/gen/spillway/v1/chunk.js";
import { makeGenerateRequest, makeMessage } from "../../src/engine/requests.js";
import { GenerateRequest } from "../../src/gen/spillway/v1/request.js";
import type { GrpcClientOptions } from "./grpc.js";
import type { Held, LoadClient, Outcome } from "./types.js";

const TEXT = 10;
const FINISH = 16;
const ERROR = 17;

/** The `Chunk.payload` field of one message (0: none of those above). */
function payloadField(m: Buffer): number {
  let i = 0;
  while (i < m.length) {
    let tag = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = m[i++]!;
      tag |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === TEXT || field === FINISH || field === ERROR) return field;
    if (wire === 0) while (m[i++]! & 0x80);
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      let len = 0;
      shift = 0;
      do {
        byte = m[i++]!;
        len += (byte & 0x7f) * 2 ** shift;
        shift += 7;
      } while (byte & 0x80);
      i += len;
    } else return 0;
  }
  return 0;
}

/** Creates a lean gRPC load client (the options and outcomes of load/clients/grpc.ts). */
export function createLeanGrpcClient(o: GrpcClientOptions): LoadClient {
  const req = makeGenerateRequest({ model: o.model, messages: [makeMessage({ role: "user", content: "benchmark" })] });
  const msg = GenerateRequest.encode(req).finish();
  const framed = Buffer.alloc(5 + msg.length);
  framed.writeUInt32BE(msg.length, 1);
  framed.set(msg, 5);
  const headers = {
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/spillway.v1.SpillwayService/Generate",
    [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
    te: "trailers",
  };
  const n = o.channels ?? 4;
  const sessions: Array<ClientHttp2Session | undefined> = Array.from({ length: n }, () => undefined);
  const session = (k: number): ClientHttp2Session => {
    let s = sessions[k];
    if (!s || s.closed || s.destroyed) {
      s = connect(`http://${o.address}`, { settings: { enablePush: false, initialWindowSize: 1 << 20 } });
      s.on("error", () => undefined);
      sessions[k] = s;
    }
    return s;
  };
  let next = 0;

  const call = (onMessage: (field: number, m: Buffer) => void, onEnd: (status: number, retryAfter: boolean, message: string) => void): { cancel(): void } => {
    const st = session(next++ % n).request(headers, { endStream: false });
    st.end(framed);
    let buf: Buffer | undefined;
    let status = -1;
    let retryAfter = false;
    let message = "";
    const read = (h: IncomingHttpHeaders): void => {
      const s = h["grpc-status"];
      if (s === undefined) return;
      status = Number(s);
      retryAfter = h["spillway-retry-after-ms"] !== undefined;
      message = decodeURIComponent(String(h["grpc-message"] ?? ""));
    };
    st.on("response", read);
    st.on("trailers", read);
    st.on("data", (chunk: Buffer) => {
      let b: Buffer = buf ? Buffer.concat([buf, chunk]) : chunk;
      buf = undefined;
      while (b.length >= 5) {
        const len = b.readUInt32BE(1);
        if (b.length < 5 + len) break;
        const m = b.subarray(5, 5 + len);
        b = b.subarray(5 + len);
        onMessage(payloadField(m), m);
      }
      if (b.length > 0) buf = b;
    });
    let ended = false;
    const end = (e?: Error): void => {
      if (ended) return;
      ended = true;
      // A stream that failed without a status: UNAVAILABLE without the gateway's trailer, as grpc-js reports a dead connection.
      if (e && status < 0) onEnd(14, false, e.message);
      else onEnd(status < 0 ? 2 : status, retryAfter, message || (status < 0 ? "no grpc-status" : ""));
    };
    st.on("close", () => end());
    st.on("error", (e) => end(e));
    return { cancel: () => st.close(constants.NGHTTP2_CANCEL) };
  };

  return {
    run(t0) {
      // A refusal is timed from the actual send: the gateway's answer time, not the generator's lag.
      const sent = performance.now();
      return new Promise<Outcome>((resolve) => {
        let ttft: number | undefined;
        let chunks = 0;
        let finished = false;
        let inBandError: string | undefined;
        call(
          (field, m) => {
            ttft ??= performance.now() - t0;
            if (field === TEXT) chunks++;
            else if (field === FINISH) finished = true;
            else if (field === ERROR) {
              const p = Chunk.decode(m).payload;
              inBandError = p?.$case === "error" ? p.value.message : "error";
            }
          },
          (status, retryAfter, message) => {
            if (status !== 0) {
              const refused = status === 14 && retryAfter;
              resolve({ ok: false, ttftMs: ttft, chunks, error: `${status} ${message}`, ...(refused ? { refused, refusalMs: performance.now() - sent } : {}) });
              return;
            }
            const ok = finished && chunks >= o.expectChunks && !inBandError;
            resolve(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: inBandError ?? `short stream (${chunks} chunks)` });
          },
        );
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        let first = true;
        const c = call(
          () => {
            if (!first) return;
            first = false;
            resolve({ close: () => c.cancel() });
          },
          (status, _r, message) => {
            if (first) reject(new Error(`${status} ${message}`));
          },
        );
      });
    },
    close() {
      for (const s of sessions) s?.destroy();
    },
  };
}
