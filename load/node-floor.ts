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
 * Run: `tsx load/node-floor.ts --upstream http://127.0.0.1:PORT [--port 0]`.
 * Prints `{"port":N}` on stdout once listening.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { request } from "undici";
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
export function startNodeFloor(upstream: string, port = 0): Promise<NodeFloor> {
  const app = uWS.App();
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
export function spawnNodeFloor(upstreamPort: number): Promise<Proc & { port: number }> {
  const child = spawn(process.execPath, [...TSX, join(ROOT, "load/node-floor.ts"), "--upstream", `http://127.0.0.1:${upstreamPort}`], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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
  const { values } = parseArgs({ options: { upstream: { type: "string" }, port: { type: "string", default: "0" } } });
  if (!values.upstream) throw new Error("node-floor: --upstream http://127.0.0.1:PORT is required");
  const floor = await startNodeFloor(values.upstream.replace(/\/+$/, ""), Number(values.port));
  process.stdout.write(`${JSON.stringify({ port: floor.port })}\n`);
  const stop = (): void => {
    floor.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
