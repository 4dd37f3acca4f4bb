/**
 * A mock OpenAI upstream for the benchmark: `POST /v1/chat/completions`
 * (streamed or whole) and `GET /v1/models`, on loopback, as cheap as it can
 * be so the gateway is what gets measured. The shape of each answer comes
 * from the model name, so one process serves every scenario of a run, through
 * any gateway that passes the model on: `m-c20-b16-d10-f0` is 20 content
 * chunks of 16 characters, 10 ms apart, the first after 0 ms. Missing parts
 * take the defaults given on the command line.
 *
 * Run: `tsx load/mock-upstream.ts [--port 0] [--chunks 20] [--bytes 16] [--delay 10] [--first 0]`.
 * Prints `{"port":N}` on stdout once listening. The role chunk and the first
 * content chunk go out in one write, so "time to first byte of the body" is
 * "time to first token" both directly and through a gateway.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { isMain } from "./util.js";

/** One answer's shape. */
export interface MockShape {
  /** Content chunks per response. */
  readonly chunks: number;
  /** Characters per content chunk. */
  readonly bytes: number;
  /** Milliseconds between content chunks. */
  readonly delayMs: number;
  /** Milliseconds before the first chunk. */
  readonly firstMs: number;
}

/** The model name that asks the mock for `shape`. */
export function mockModel(shape: MockShape): string {
  return `m-c${shape.chunks}-b${shape.bytes}-d${shape.delayMs}-f${shape.firstMs}`;
}

/** Reads a shape from a model name (`m-c20-b16-d10-f0`), defaults for missing parts. */
export function parseMockModel(model: string, defaults: MockShape): MockShape {
  const get = (k: string, d: number): number => {
    const m = new RegExp(`-${k}(\\d+)`).exec(model);
    return m ? Number(m[1]) : d;
  };
  return { chunks: get("c", defaults.chunks), bytes: get("b", defaults.bytes), delayMs: get("d", defaults.delayMs), firstMs: get("f", defaults.firstMs) };
}

interface Frames {
  readonly first: string;
  readonly next: string;
  readonly tail: string;
  readonly whole: string;
  readonly shape: MockShape;
}

const framesCache = new Map<string, Frames>();

function frames(model: string, defaults: MockShape): Frames {
  let f = framesCache.get(model);
  if (f) return f;
  const shape = parseMockModel(model, defaults);
  const text = "x".repeat(Math.max(1, shape.bytes));
  const head = `{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":${JSON.stringify(model)},"choices":[{"index":0,"delta":`;
  const content = `data: ${head}{"content":"${text}"},"finish_reason":null}]}\n\n`;
  const role = `data: ${head}{"role":"assistant","content":""},"finish_reason":null}]}\n\n`;
  const tail =
    `data: ${head}{},"finish_reason":"stop"}]}\n\n` +
    `data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":${JSON.stringify(model)},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${shape.chunks},"total_tokens":${5 + shape.chunks}}}\n\n` +
    "data: [DONE]\n\n";
  const whole = JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion",
    created: 1,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: text.repeat(shape.chunks), refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: shape.chunks, total_tokens: 5 + shape.chunks },
  });
  f = { first: role + content, next: content, tail, whole, shape };
  framesCache.set(model, f);
  return f;
}

function stream(res: ServerResponse, f: Frames): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const { chunks, delayMs, firstMs } = f.shape;
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const step = (): void => {
    timer = undefined;
    if (res.destroyed) return;
    if (delayMs === 0) {
      // Everything at once: one write per response.
      res.end(f.first + f.next.repeat(Math.max(0, chunks - 1)) + f.tail);
      return;
    }
    res.write(sent === 0 ? f.first : f.next);
    sent++;
    if (sent >= chunks) res.end(f.tail);
    else timer = setTimeout(step, delayMs);
  };
  res.on("close", () => timer && clearTimeout(timer));
  if (firstMs > 0) timer = setTimeout(step, firstMs);
  else {
    res.flushHeaders();
    step();
  }
}

/** Starts the mock on `port` (0: a free one) on 127.0.0.1; resolves with the port. */
export async function startMockUpstream(port: number, defaults: MockShape): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer({ keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"object":"list","data":[]}');
      return;
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      // Cheap field reads instead of JSON.parse: the mock must not be the bottleneck.
      const model = /"model"\s*:\s*"([^"]*)"/.exec(body)?.[1] ?? "m";
      const streamed = /"stream"\s*:\s*true/.test(body);
      const f = frames(model, defaults);
      if (streamed) stream(res, f);
      else res.writeHead(200, { "content-type": "application/json" }).end(f.whole);
    });
  });
  server.maxHeadersCount = 100;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", 16_384, r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      chunks: { type: "string", default: "20" },
      bytes: { type: "string", default: "16" },
      delay: { type: "string", default: "10" },
      first: { type: "string", default: "0" },
    },
  });
  const mock = await startMockUpstream(Number(values.port), {
    chunks: Number(values.chunks),
    bytes: Number(values.bytes),
    delayMs: Number(values.delay),
    firstMs: Number(values.first),
  });
  process.stdout.write(`${JSON.stringify({ port: mock.port })}\n`);
  process.once("SIGTERM", () => void mock.close().then(() => process.exit(0)));
  process.once("SIGINT", () => void mock.close().then(() => process.exit(0)));
}
