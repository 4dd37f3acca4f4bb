/**
 * Refusing a body without reading it (413 for a declared or streamed size over
 * the limit, 415 for a wrong content type) must not lose the answer: the door
 * reads and drops the rest (lingering close) so a client still sending gets its
 * status instead of EPIPE / ECONNRESET, many at once.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

interface Outcome {
  status?: number;
  body?: string;
  error?: string;
}

/** Sends `size` bytes in 64 KiB writes (declared with Content-Length unless `chunked`), resolving with what came back. */
function upload(port: number, path: string, size: number, contentType: string, chunked = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { "content-type": contentType, authorization: "Bearer x" };
    if (!chunked) headers["content-length"] = size;
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", (e) => resolve({ status: res.statusCode ?? 0, body, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on("error", (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        sent += piece.length;
        if (!req.write(piece)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

describe("lingering close after refusing a body", () => {
  let gw: TestGateway;
  let port: number;
  before(async () => {
    gw = await startTestGateway({ http: { maxBodyBytes: 1024 * 1024 } });
    port = gw.gateway.httpPort;
  });
  after(() => gw.close());

  it("20 concurrent 24 MiB uploads over a 1 MiB limit all read their 413 (declared length)", async () => {
    const got = await Promise.all(Array.from({ length: 20 }, () => upload(port, "/v1/chat/completions", 24 * 1024 * 1024, "application/json")));
    for (const g of got) {
      assert.equal(g.status, 413, JSON.stringify(g));
      assert.equal(JSON.parse(g.body!).error.code, "request_too_large");
    }
  });

  it("a chunked upload that grows over the limit reads its 413", async () => {
    const got = await Promise.all(Array.from({ length: 8 }, () => upload(port, "/v1/chat/completions", 16 * 1024 * 1024, "application/json", true)));
    for (const g of got) assert.equal(g.status, 413, JSON.stringify(g));
  });

  it("a wrong content type with a large body reads its 415", async () => {
    const got = await Promise.all(Array.from({ length: 8 }, () => upload(port, "/v1/chat/completions", 8 * 1024 * 1024, "text/plain")));
    for (const g of got) {
      assert.equal(g.status, 415, JSON.stringify(g));
      assert.equal(JSON.parse(g.body!).error.code, "unsupported_media_type");
    }
  });

  it("the connection is not reused after a refusal, and the gateway keeps serving", async () => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "still here" }] }),
    });
    assert.equal(res.status, 200);
  });
});
