/**
 * The lean HTTP load client: the same requests and outcomes as
 * load/clients/http.ts on raw `net` sockets, so the load generator can offer
 * several thousand streams a second from one process on a shared core.
 * The request is rendered once (one Buffer, written as is); sockets are kept
 * alive and reused last-in first-out; of a response it reads only the status
 * line, the few headers that frame the body or mark a refusal
 * (`content-length`, `transfer-encoding`, `retry-after`, `connection`), and
 * of the body the bytes a stream's outcome needs: the time of the first body
 * bytes (TTFT), `"content":"x` occurrences (chunks) and `data: [DONE]`.
 * Node's http client builds an IncomingMessage, a header object and a
 * readable stream per response and emits each piece through them: measured
 * with load/loadgen-cost.ts, the difference is most of the generator's CPU.
 */
import { connect, type Socket } from "node:net";
import type { HttpClientOptions } from "./http.js";
import type { Held, LoadClient, Outcome } from "./types.js";

const CONTENT = Buffer.from('"content":"x');
const DONE = Buffer.from("data: [DONE]");
/** Both patterns are 12 bytes: an occurrence split over two pieces lies within 11 bytes either side of the cut. */
const EDGE = 11;
const CRLFCRLF = Buffer.from("\r\n\r\n");

function count(b: Buffer, p: Buffer): number {
  let n = 0;
  let i = b.indexOf(p);
  while (i >= 0) {
    n++;
    i = b.indexOf(p, i + p.length);
  }
  return n;
}

/** What one exchange on a connection wants to hear about (run or hold). */
interface Exchange {
  /** The status line and headers arrived. */
  head(status: number, retryAfter: boolean): void;
  /** A piece of the (de-chunked) body. */
  body(b: Buffer): void;
  /** The response ended; the connection is free again. */
  end(): void;
  fail(e: Error): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  Trailer,
}

/** One keep-alive connection and its response parser. */
class Conn {
  readonly socket: Socket;
  ex: Exchange | undefined;
  dead = false;
  private state = State.Head;
  private buf: Buffer | undefined;
  private left = 0;
  private closeAfter = false;

  constructor(host: string, port: number, private readonly release: (c: Conn) => void) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (b: Buffer) => this.onData(b));
    this.socket.on("error", (e) => this.die(e));
    this.socket.on("close", () => this.die(new Error("socket hang up")));
  }

  send(req: Buffer, ex: Exchange): void {
    this.ex = ex;
    this.state = State.Head;
    this.buf = undefined;
    this.socket.write(req);
  }

  private die(e: Error): void {
    this.dead = true;
    const ex = this.ex;
    this.ex = undefined;
    ex?.fail(e);
    this.socket.destroy();
  }

  private finish(): void {
    const ex = this.ex;
    this.ex = undefined;
    this.state = State.Head;
    this.buf = undefined;
    if (this.closeAfter) {
      this.dead = true;
      this.socket.destroy();
    }
    ex?.end();
    if (!this.dead) this.release(this);
  }

  private onData(chunk: Buffer): void {
    let b: Buffer = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = undefined;
    while (b.length > 0 && this.ex) {
      switch (this.state) {
        case State.Head: {
          const end = b.indexOf(CRLFCRLF);
          if (end < 0) {
            this.buf = b;
            return;
          }
          const head = b.toString("latin1", 0, end).toLowerCase();
          const status = Number(head.slice(9, 12));
          this.closeAfter = head.includes("\r\nconnection: close");
          const cl = /\r\ncontent-length: *(\d+)/.exec(head);
          b = b.subarray(end + 4);
          if (head.includes("\r\ntransfer-encoding: chunked")) this.state = State.ChunkSize;
          else {
            this.state = State.Length;
            this.left = cl ? Number(cl[1]) : 0;
          }
          this.ex.head(status, head.includes("\r\nretry-after:"));
          if (this.state === State.Length && this.left === 0) this.finish();
          break;
        }
        case State.Length: {
          const n = Math.min(this.left, b.length);
          this.ex.body(b.subarray(0, n));
          this.left -= n;
          b = b.subarray(n);
          if (this.left === 0) this.finish();
          break;
        }
        case State.ChunkSize: {
          const nl = b.indexOf(10);
          if (nl < 0) {
            this.buf = b;
            return;
          }
          this.left = parseInt(b.toString("latin1", 0, nl), 16);
          b = b.subarray(nl + 1);
          this.state = this.left === 0 ? State.Trailer : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.left, b.length);
          this.ex.body(b.subarray(0, n));
          this.left -= n;
          b = b.subarray(n);
          if (this.left === 0) this.state = State.ChunkCrlf;
          break;
        }
        case State.ChunkCrlf: {
          const nl = b.indexOf(10);
          if (nl < 0) return;
          b = b.subarray(nl + 1);
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailer: {
          // No trailers in these responses: the empty line after the last chunk.
          const nl = b.indexOf(10);
          if (nl < 0) {
            this.buf = b;
            return;
          }
          b = b.subarray(nl + 1);
          this.finish();
          break;
        }
      }
    }
  }
}

/** Creates a lean HTTP load client (the options and outcomes of load/clients/http.ts). */
export function createLeanHttpClient(o: HttpClientOptions): LoadClient {
  const url = new URL(o.origin);
  const host = url.hostname;
  const port = Number(url.port);
  const body = JSON.stringify({
    model: o.model,
    messages: [{ role: "user", content: "benchmark" }],
    stream: o.stream,
    ...(o.stream ? { stream_options: { include_usage: true } } : {}),
  });
  const extra = Object.entries(o.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const req = Buffer.from(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
  const idle: Conn[] = [];
  const all = new Set<Conn>();
  const release = (c: Conn): void => void idle.push(c);
  const take = (): Conn => {
    for (let c = idle.pop(); c; c = idle.pop()) if (!c.dead) return c;
    const c = new Conn(host, port, release);
    all.add(c);
    c.socket.once("close", () => all.delete(c));
    return c;
  };

  return {
    run(t0) {
      // A refusal is timed from the actual send: the gateway's answer time, not the generator's lag.
      const sent = performance.now();
      return new Promise<Outcome>((resolve) => {
        let status = 0;
        let refusedAt: number | undefined;
        let ttft: number | undefined;
        let chunks = 0;
        let done = false;
        let edge: Buffer | undefined;
        take().send(req, {
          head(s, retryAfter) {
            status = s;
            // A refusal is timed at its status line: what a client would act on.
            if (s === 503 && retryAfter) refusedAt = performance.now() - sent;
          },
          body(b) {
            if (status !== 200 || !o.stream) return;
            ttft ??= performance.now() - t0;
            if (edge) {
              const cut = Buffer.concat([edge, b.subarray(0, EDGE)]);
              chunks += count(cut, CONTENT);
              if (!done && cut.includes(DONE)) done = true;
            }
            chunks += count(b, CONTENT);
            if (!done && b.includes(DONE)) done = true;
            edge = b.length >= EDGE ? b.subarray(b.length - EDGE) : Buffer.concat([edge ?? Buffer.alloc(0), b]).subarray(-EDGE);
          },
          end() {
            if (status !== 200) resolve({ ok: false, ttftMs: undefined, chunks: 0, error: `HTTP ${status}`, ...(refusedAt !== undefined ? { refused: true, refusalMs: refusedAt } : {}) });
            else if (!o.stream) resolve({ ok: true, ttftMs: performance.now() - t0, chunks: o.expectChunks });
            else {
              const ok = done && chunks >= o.expectChunks;
              resolve(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: done ? `short stream (${chunks} chunks)` : "no [DONE]" });
            }
          },
          fail(e) {
            resolve({ ok: false, ttftMs: ttft, chunks, error: e.message });
          },
        });
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        const c = take();
        let status = 0;
        let first = true;
        c.send(req, {
          head(s) {
            status = s;
            if (s !== 200) {
              reject(new Error(`HTTP ${s}`));
              c.socket.destroy();
            }
          },
          body() {
            if (status === 200 && first) {
              first = false;
              resolve({ close: () => c.socket.destroy() });
            }
          },
          end() {
            if (first) reject(new Error("ended before its first chunk"));
          },
          fail(e) {
            if (first) reject(e);
          },
        });
      });
    },
    close() {
      for (const c of all) c.socket.destroy();
      all.clear();
      idle.length = 0;
    },
  };
}
