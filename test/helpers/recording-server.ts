/**
 * The HTTP server under every fake upstream: records each request (body
 * parsed as JSON when it is JSON), notices when the gateway aborts one, and
 * hands the rest to the fake's own answer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A request a fake received. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: any;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  /** Set when the gateway closed the request before the fake finished it. */
  abortedAt?: number;
}

/** A running recording server. */
export interface RecordingServer {
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Resolves when the next request is aborted by the gateway. */
  readonly nextAbort: () => Promise<RecordedRequest>;
  readonly close: () => Promise<void>;
}

/** Starts a recording server on a free loopback port; `answer` writes each response. */
export async function startRecordingServer(answer: (rec: RecordedRequest, res: ServerResponse) => void): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const abortWaiters: Array<(r: RecordedRequest) => void> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // keep raw text
      }
      const rec: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, receivedAt: performance.now() };
      requests.push(rec);
      res.on("close", () => {
        if (!res.writableFinished) {
          rec.abortedAt = performance.now();
          for (const w of abortWaiters.splice(0)) w(rec);
        }
      });
      answer(rec, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requests,
    nextAbort: () => new Promise((r) => abortWaiters.push(r)),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
