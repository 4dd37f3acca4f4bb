/**
 * The Node floor (issue 16): the least a relay built from Spillway's own
 * parts can cost — a uWebSockets.js server in, undici's `request` to the
 * upstream out, one process, nothing else. Each request's body is read
 * whole and sent upstream as it is (method, path, `content-type`); the
 * answer goes back with its status and `content-type`:
 *
 * - a non-streamed answer (anything but `text/event-stream`): its body read
 *   whole, then sent in one `end` (no JSON parse, no re-encoding);
 * - a streamed answer: each upstream chunk written to the client as it
 *   arrives (one corked `write` per undici `data` event), no parsing, with
 *   backpressure (the upstream body pauses until the client drains).
 *
 * A client that leaves aborts the upstream request. No logging, metrics,
 * validation, routing or retries: what it costs is what Node, uWS and undici
 * cost for the two HTTP exchanges. The CPU benchmark (`load/cpu.ts`) runs it
 * as the `node-floor` target next to nginx and Spillway: Spillway / node-floor
 * is what Spillway's own code costs, node-floor / nginx what the runtime does.
 *
 * `--client` picks how the upstream is read (issue 16, what Node can do):
 * - `request` (default): undici's `request()`, the body a Readable read by
 *   its `data` events;
 * - `dispatch`: undici's `Dispatcher.dispatch(opts, handler)` with a raw
 *   handler (`onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`, the
 *   API undici's HTTP/1.1 client calls directly), no Readable: backpressure
 *   by returning false from `onData` and calling `resume` once uWS drained;
 * - `dispatch-nt`: the same with `bodyTimeout: 0` (no body timer refreshed
 *   per read);
 * - `net`: a lower bound, not a client to ship — `net.Socket`s kept alive
 *   to the upstream, read with `onread` into one static buffer, the
 *   response head and chunked framing cut by hand (enough for the mock).
 *
 * Run: `tsx load/node-floor.ts --upstream http://127.0.0.1:PORT [--port 0] [--client request|dispatch|dispatch-nt|net]`.
 * Prints `{"port":N}` on stdout once listening.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect, type Socket } from "node:net";
import { getGlobalDispatcher, request, type Dispatcher } from "undici";
import uWS from "uWebSockets.js";
import { ROOT, TSX, type Proc } from "./procs.js";
import { isMain, sleep } from "./util.js";

/** A running floor relay. */
export interface NodeFloor {
  readonly port: number;
  close(): void;
}

/** The status line uWS wants (`200 OK`), for the statuses the mock sends. */
function statusLine(code: number): string {
  return code === 200 ? "200 OK" : String(code);
}

/**
 * Starts the relay on 127.0.0.1:`port` (0: a free one) in front of
 * `upstream` (`http://host:port`, no trailing slash). Rejects when it cannot
 * listen.
 */
export function startNodeFloor(upstream: string, port = 0, client: FloorClient = "request"): Promise<NodeFloor> {
  const app = uWS.App();
  const origin = upstream;
  const pool = client === "net" ? new NetPool(new URL(upstream)) : undefined;
  app.any("/*", (res, req) => {
    const method = req.getCaseSensitiveMethod();
    const url = req.getUrl();
    const contentType = req.getHeader("content-type");
    const ac = new AbortController();
    let done = false;
    res.onAborted(() => {
      done = true;
      ac.abort();
    });
    const parts: Buffer[] = [];
    res.onData((chunk, last) => {
      // uWS reuses the chunk's memory after this call: copy it.
      parts.push(Buffer.from(chunk.slice(0)));
      if (!last) return;
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (client === "dispatch" || client === "dispatch-nt") {
        const h = new RelayHandler(res, () => done, () => (done = true));
        res.onAborted(() => {
          done = true;
          h.abort();
        });
        getGlobalDispatcher().dispatch({ origin, path: url, method: method, headers: contentType ? { "content-type": contentType } : {}, body: method === "GET" ? null : body, ...(client === "dispatch-nt" ? { bodyTimeout: 0 } : {}) }, h);
        return;
      }
      if (pool) {
        pool.send(res, method, url, contentType, method === "GET" ? undefined : body, () => done, () => (done = true), (abort) =>
          res.onAborted(() => {
            done = true;
            abort();
          }),
        );
        return;
      }
      request(upstream + url, { method: method as "POST", headers: contentType ? { "content-type": contentType } : {}, body: method === "GET" ? null : body, signal: ac.signal }).then(
        (up) => relay(res, up, () => done, () => (done = true)),
        () => {
          if (done) return;
          done = true;
          res.cork(() => res.writeStatus("502 Bad Gateway").end("upstream unreachable"));
        },
      );
    });
  });

  return new Promise((resolve, reject) => {
    app.listen("127.0.0.1", port, (token) => {
      if (!token) {
        reject(new Error(`node-floor: cannot listen on 127.0.0.1:${port}`));
        return;
      }
      resolve({ port: uWS.us_socket_local_port(token), close: () => uWS.us_listen_socket_close(token) });
    });
  });
}

type Answer = Awaited<ReturnType<typeof request>>;

/** How the floor reads the upstream (see the file's comment). */
export type FloorClient = "request" | "dispatch" | "dispatch-nt" | "net";

/** The content type in undici's raw headers (`[name, value, …]` Buffers). */
function rawContentType(raw: Buffer[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 12 && n.toString("latin1").toLowerCase() === "content-type") return raw[i + 1]!.toString("latin1");
  }
  return "application/octet-stream";
}

/** `--client dispatch`: undici's raw handler, relaying each `onData` to uWS. */
class RelayHandler implements Dispatcher.DispatchHandler {
  private abortFn: ((e?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private status = 200;
  private type = "";
  private streaming = false;
  private parts: Buffer[] = [];
  private readonly onWritable = (): boolean => {
    this.resumeFn?.();
    return true;
  };

  constructor(
    private readonly res: uWS.HttpResponse,
    private readonly aborted: () => boolean,
    private readonly finish: () => void,
  ) {}

  abort(): void {
    this.abortFn?.(new Error("client left"));
  }

  onConnect(abort: (e?: Error) => void): void {
    this.abortFn = abort;
    if (this.aborted()) abort(new Error("client left"));
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    this.status = statusCode;
    this.resumeFn = resume;
    this.type = rawContentType(raw);
    if (this.type.startsWith("text/event-stream") && !this.aborted()) {
      this.streaming = true;
      this.res.cork(() => this.res.writeStatus(statusLine(statusCode)).writeHeader("content-type", this.type));
    }
    return true;
  }

  onData(d: Buffer): boolean {
    if (!this.streaming) {
      this.parts.push(d);
      return true;
    }
    if (this.aborted()) return true;
    let ok = true;
    this.res.cork(() => (ok = this.res.write(d)));
    if (ok) return true;
    // Backpressure: undici stops reading the socket until resume().
    this.res.onWritable(this.onWritable);
    return false;
  }

  onComplete(): void {
    if (this.aborted()) return;
    this.finish();
    if (this.streaming) {
      this.res.cork(() => this.res.end());
      return;
    }
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.res.cork(() => this.res.writeStatus(statusLine(this.status)).writeHeader("content-type", this.type).end(all));
  }

  onError(): void {
    if (this.aborted()) return;
    this.finish();
    if (this.streaming) this.res.cork(() => this.res.close());
    else this.res.cork(() => this.res.writeStatus("502 Bad Gateway").end("upstream unreachable"));
  }
}

const CRLF2 = Buffer.from("\r\n\r\n");

/**
 * `--client net`: a lower bound — keep-alive sockets to the upstream read
 * with `onread` into one static buffer, the head and chunked framing cut by
 * hand. Enough for the mock (a status line, `content-type`, a body framed
 * by `content-length` or chunked), not a general HTTP client.
 */
class NetPool {
  private readonly idle: NetConn[] = [];
  constructor(private readonly url: URL) {}

  send(res: uWS.HttpResponse, method: string, path: string, contentType: string, body: Buffer | undefined, aborted: () => boolean, finish: () => void, onAbort: (abort: () => void) => void): void {
    const c = this.idle.pop() ?? new NetConn(this.url, this);
    c.start(res, aborted, finish);
    onAbort(() => c.kill());
    const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.url.host}\r\n${contentType ? `content-type: ${contentType}\r\n` : ""}content-length: ${body?.length ?? 0}\r\n\r\n`;
    c.socket.cork();
    c.socket.write(head);
    if (body) c.socket.write(body);
    c.socket.uncork();
  }

  release(c: NetConn): void {
    this.idle.push(c);
  }

  drop(c: NetConn): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }
}

/** One static read buffer for every `--client net` socket (reads are handled before the next). */
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

class NetConn {
  readonly socket: Socket;
  private res: uWS.HttpResponse | undefined;
  private aborted: () => boolean = () => true;
  private finish: () => void = () => undefined;
  /** 0 head, 1 chunk size line, 2 chunk data, 3 chunk CRLF, 4 content-length body. */
  private state = 0;
  private head: Buffer | undefined;
  private left = 0;
  private sizeLine = "";
  private status = 200;
  private type = "";
  private streaming = false;
  private parts: Buffer[] = [];
  private readonly resumeOnWritable = (): boolean => {
    this.socket.resume();
    return true;
  };

  constructor(url: URL, private readonly pool: NetPool) {
    this.socket = connect({ host: url.hostname, port: Number(url.port), onread: { buffer: READ_BUF, callback: (n: number, buf: Uint8Array) => this.onRead(buf as Buffer, n) } });
    this.socket.setNoDelay(true);
    this.socket.on("error", () => this.fail());
    this.socket.on("close", () => {
      this.pool.drop(this);
      this.fail();
    });
  }

  start(res: uWS.HttpResponse, aborted: () => boolean, finish: () => void): void {
    this.res = res;
    this.aborted = aborted;
    this.finish = finish;
    this.state = 0;
    this.head = undefined;
    this.parts = [];
    this.streaming = false;
  }

  kill(): void {
    this.res = undefined;
    this.socket.destroy();
  }

  private fail(): void {
    const res = this.res;
    this.res = undefined;
    if (!res || this.aborted()) return;
    this.finish();
    res.cork(() => (this.streaming ? res.close() : res.writeStatus("502 Bad Gateway").end("upstream unreachable")));
  }

  private onRead(buf: Buffer, n: number): boolean {
    let off = 0;
    let ok = true;
    while (off < n && this.res) {
      if (this.state === 0) {
        const chunk = this.head ? Buffer.concat([this.head, buf.subarray(off, n)]) : buf.subarray(off, n);
        const end = chunk.indexOf(CRLF2);
        if (end < 0) {
          this.head = Buffer.from(chunk);
          return true;
        }
        const text = chunk.toString("latin1", 0, end);
        this.head = undefined;
        this.status = Number(text.slice(9, 12));
        this.type = /\r\ncontent-type: *([^\r]*)/i.exec(text)?.[1] ?? "application/octet-stream";
        const len = /\r\ncontent-length: *(\d+)/i.exec(text);
        const consumed = end + 4 - (chunk.length - (n - off));
        off += consumed;
        if (len) {
          this.state = 4;
          this.left = Number(len[1]);
        } else this.state = 1;
        if (this.type.startsWith("text/event-stream")) {
          this.streaming = true;
          const res = this.res;
          res.cork(() => res.writeStatus(statusLine(this.status)).writeHeader("content-type", this.type));
        }
        if (this.state === 4 && this.left === 0) this.complete();
        continue;
      }
      if (this.state === 1) {
        const nl = buf.indexOf(10, off);
        if (nl < 0 || nl >= n) {
          this.sizeLine += buf.toString("latin1", off, n);
          return true;
        }
        const line = this.sizeLine + buf.toString("latin1", off, nl);
        this.sizeLine = "";
        off = nl + 1;
        this.left = parseInt(line, 16);
        this.state = this.left === 0 ? 5 : 2;
        continue;
      }
      if (this.state === 5) {
        // The last chunk's CRLF (no trailers from the mock).
        const nl = buf.indexOf(10, off);
        if (nl < 0 || nl >= n) return true;
        off = nl + 1;
        this.complete();
        continue;
      }
      if (this.state === 3) {
        const nl = buf.indexOf(10, off);
        if (nl < 0 || nl >= n) return true;
        off = nl + 1;
        this.state = 1;
        continue;
      }
      // 2 or 4: body bytes.
      const take = Math.min(this.left, n - off);
      const piece = buf.subarray(off, off + take);
      off += take;
      this.left -= take;
      if (this.streaming) {
        if (!this.aborted()) {
          const res = this.res;
          res.cork(() => (ok = res.write(piece) && ok));
        }
      } else this.parts.push(Buffer.from(piece));
      if (this.left === 0) {
        if (this.state === 2) this.state = 3;
        else this.complete();
      }
    }
    if (!ok && this.res) {
      this.res.onWritable(this.resumeOnWritable);
      return false;
    }
    return true;
  }

  private complete(): void {
    const res = this.res;
    this.res = undefined;
    this.state = 0;
    this.pool.release(this);
    if (!res || this.aborted()) return;
    this.finish();
    if (this.streaming) res.cork(() => res.end());
    else {
      const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      res.cork(() => res.writeStatus(statusLine(this.status)).writeHeader("content-type", this.type).end(all));
    }
  }
}

/** Sends the upstream's answer on: whole, or chunk by chunk for an event stream. */
function relay(res: uWS.HttpResponse, up: Answer, aborted: () => boolean, finish: () => void): void {
  const ct = up.headers["content-type"];
  const type = typeof ct === "string" ? ct : "application/octet-stream";
  const body = up.body;
  if (aborted()) {
    body.destroy();
    return;
  }
  if (!type.startsWith("text/event-stream")) {
    const parts: Buffer[] = [];
    body.on("data", (d: Buffer) => parts.push(d));
    body.on("error", () => undefined);
    body.on("end", () => {
      if (aborted()) return;
      finish();
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      res.cork(() => res.writeStatus(statusLine(up.statusCode)).writeHeader("content-type", type).end(all));
    });
    return;
  }
  res.cork(() => res.writeStatus(statusLine(up.statusCode)).writeHeader("content-type", type));
  body.on("data", (d: Buffer) => {
    if (aborted()) return;
    let ok = true;
    res.cork(() => (ok = res.write(d)));
    if (!ok) {
      // Backpressure: hold the upstream until uWS has sent what it buffered.
      body.pause();
      res.onWritable(() => {
        body.resume();
        return true;
      });
    }
  });
  body.on("error", () => undefined);
  body.on("end", () => {
    if (aborted()) return;
    finish();
    res.cork(() => res.end());
  });
}

/**
 * Starts the relay as its own process (so its CPU is read from /proc alone)
 * in front of the mock on `upstreamPort`; resolves once it listens. Fails
 * the run when it exits or is not ready within 30 s; `stop()` sends SIGTERM.
 */
export function spawnNodeFloor(upstreamPort: number, client: FloorClient = "request"): Promise<Proc & { port: number }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/node-floor.ts"), "--upstream", `http://127.0.0.1:${upstreamPort}`, "--client", client], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`node-floor: not ready after 30 s\n${out}${err}`)), 30_000);
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({ child, port: Number(m[1]), stop });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node-floor exited (${code}) before it listened\n${out}${err}`));
    });
  });
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { upstream: { type: "string" }, port: { type: "string", default: "0" }, client: { type: "string", default: "request" } } });
  if (!values.upstream) throw new Error("node-floor: --upstream http://127.0.0.1:PORT is required");
  const floor = await startNodeFloor(values.upstream.replace(/\/+$/, ""), Number(values.port), values.client as FloorClient);
  process.stdout.write(`${JSON.stringify({ port: floor.port })}\n`);
  const stop = (): void => {
    floor.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
