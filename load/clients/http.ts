/**
 * The HTTP load client: OpenAI chat completions, streamed (SSE) or whole, on
 * Node's own http client with a keep-alive agent. Not autocannon or undici's
 * Pool: the benchmark needs, per request, the time to the first body bytes of
 * a streamed response and a check that the stream ended with `[DONE]`, and
 * it must send on an open-loop schedule (a request at its scheduled time
 * whether or not earlier ones finished). autocannon measures whole responses
 * in a closed loop; undici would be one more dependency for the same loop.
 */
import { Agent, request, type IncomingMessage } from "node:http";
import type { Held, LoadClient, Outcome } from "./types.js";

/** Settings of an HTTP load client. */
export interface HttpClientOptions {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  readonly model: string;
  readonly stream: boolean;
  /** Extra request headers (e.g. Portkey's routing headers). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Content chunks a complete stream has (a shorter one counts as an error). */
  readonly expectChunks: number;
}

const DONE = Buffer.from("data: [DONE]");

/** Counts `"content":"x` occurrences: the mock's content is all `x`. */
function countContent(b: Buffer): number {
  let n = 0;
  let i = b.indexOf('"content":"x');
  while (i >= 0) {
    n++;
    i = b.indexOf('"content":"x', i + 12);
  }
  return n;
}

/** Creates an HTTP load client. */
export function createHttpClient(o: HttpClientOptions): LoadClient {
  const url = new URL(o.origin);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 65_536, scheduling: "lifo" });
  const body = JSON.stringify({
    model: o.model,
    messages: [{ role: "user", content: "benchmark" }],
    stream: o.stream,
    ...(o.stream ? { stream_options: { include_usage: true } } : {}),
  });
  const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...o.headers };
  const options = { agent, host: url.hostname, port: Number(url.port), method: "POST", path: "/v1/chat/completions", headers };

  function open(onRes: (res: IncomingMessage) => void, onErr: (e: Error) => void): ReturnType<typeof request> {
    const req = request(options, onRes);
    req.on("error", onErr);
    req.end(body);
    return req;
  }

  return {
    run(t0) {
      // A refusal is timed from the actual send: the gateway's answer time, not the generator's lag.
      const sent = performance.now();
      return new Promise<Outcome>((resolve) => {
        let ttft: number | undefined;
        let chunks = 0;
        // The last bytes of the previous piece: shorter than the pattern, so an
        // occurrence split across two pieces is counted exactly once.
        let carry: Buffer = Buffer.alloc(0);
        let tail: Buffer = Buffer.alloc(0);
        open(
          (res) => {
            if (res.statusCode !== 200) {
              // A refusal is timed at its status line: what a client would act on.
              const refused = res.statusCode === 503 && res.headers["retry-after"] !== undefined;
              const at = performance.now() - sent;
              res.resume();
              res.on("end", () => resolve({ ok: false, ttftMs: undefined, chunks: 0, error: `HTTP ${res.statusCode}`, ...(refused ? { refused, refusalMs: at } : {}) }));
              return;
            }
            if (!o.stream) {
              res.resume();
              res.on("end", () => resolve({ ok: true, ttftMs: performance.now() - t0, chunks: o.expectChunks }));
              return;
            }
            res.on("data", (b: Buffer) => {
              ttft ??= performance.now() - t0;
              const joined = carry.length > 0 ? Buffer.concat([carry, b]) : b;
              chunks += countContent(joined);
              carry = joined.subarray(-11);
              tail = Buffer.concat([tail.subarray(-16), b.subarray(-48)]);
            });
            res.on("end", () => {
              const done = tail.includes(DONE);
              const ok = done && chunks >= o.expectChunks;
              resolve(ok ? { ok, ttftMs: ttft, chunks } : { ok, ttftMs: ttft, chunks, error: done ? `short stream (${chunks} chunks)` : "no [DONE]" });
            });
            res.on("error", (e) => resolve({ ok: false, ttftMs: ttft, chunks, error: e.message }));
          },
          (e) => resolve({ ok: false, ttftMs: undefined, chunks: 0, error: e.message }),
        );
      });
    },
    hold() {
      return new Promise<Held>((resolve, reject) => {
        const req = open(
          (res) => {
            if (res.statusCode !== 200) {
              res.resume();
              reject(new Error(`HTTP ${res.statusCode}`));
              return;
            }
            res.once("data", () => resolve({ close: () => req.destroy() }));
            res.on("data", () => undefined);
            res.on("error", () => undefined);
          },
          (e) => reject(e),
        );
      });
    },
    close() {
      agent.destroy();
    },
  };
}
