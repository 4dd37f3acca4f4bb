/**
 * Clients that stall: a request whose headers or body never finish is closed
 * by the server (uWebSockets.js's 10 s idle timeout, not configurable from
 * Spillway), and the gateway keeps serving meanwhile.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { postJson } from "./helpers/sse.js";

describe("stalled clients", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  /** Sends `data`, then nothing; resolves with how long the server took to close the socket. */
  function stall(data: string): Promise<number> {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      const s = connect(gw.gateway.httpPort, "127.0.0.1", () => s.write(data));
      s.on("error", () => undefined);
      s.on("close", () => resolve(Date.now() - t0));
      setTimeout(() => {
        s.destroy();
        reject(new Error("the server kept a stalled connection open for 25 s"));
      }, 25_000).unref();
    });
  }

  it("closes connections whose headers or body stall, and keeps serving others", async () => {
    const headers = stall("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Ty");
    const body = stall('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model"');
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "still here" }] });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).choices[0].message.content, "still here");
    const [h, b] = await Promise.all([headers, body]);
    console.log(`# stalled headers closed after ${h} ms, stalled body after ${b} ms`);
    assert.ok(h < 25_000 && b < 25_000);
  });
});
