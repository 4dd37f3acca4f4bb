/**
 * Test helper: a raw WebSocket upgrade request to the realtime door, for
 * tests that look at how an upgrade is refused (status, Retry-After, body).
 */
import { request as httpRequest } from "node:http";
import type { TestGateway } from "./gateway.js";

/** A WebSocket upgrade: its status, Retry-After and body (101 and no body when it opened). */
export function rawUpgrade(gw: TestGateway): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.origin}/v1/realtime?model=local/realtime`, {
      headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, retryAfter: undefined, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"], body }));
    });
    req.on("error", reject);
    req.end();
  });
}
