/**
 * Load shedding (`limits.maxEventLoopUtilization`): while the gateway
 * process's event loop is saturated, new streams are refused at once with
 * 503 + Retry-After (HTTP) or UNAVAILABLE (gRPC) instead of joining a backlog
 * that slows every stream; once the loop has room again they are served.
 * The saturation is real: the test process (which runs the gateway) spins
 * its own event loop.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { startTestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { assertSchema } from "./helpers/openapi.js";
import { postJson } from "./helpers/sse.js";
import { saturate } from "./helpers/saturate.js";


const chat = { model: "local/echo", messages: [{ role: "user", content: "shed me" }], stream: true };

describe("load shedding", () => {
  it("refuses new streams while the event loop is saturated (503 + Retry-After, gRPC UNAVAILABLE), serves them after", async () => {
    const gw = await startTestGateway({ limits: { maxEventLoopUtilization: 0.8 } });
    const client = spillwayClient(gw.grpcAddress!);
    try {
      const stop = saturate();
      try {
        await sleep(1000);
        const res = await postJson(`${gw.baseUrl}/chat/completions`, chat);
        assert.equal(res.status, 503);
        assert.equal(res.headers.get("retry-after"), "1");
        const body = (await res.json()) as { error: { code: string; message: string } };
        assertSchema("ErrorResponse", body);
        assert.equal(body.error.code, "server_overloaded");
        const g = await readAll(client.generate(generateRequest("local/echo", "shed me")));
        assert.equal(g.error?.code, status.UNAVAILABLE);
        assert.equal(g.chunks.length, 0);
      } finally {
        stop();
      }
      await sleep(1000);
      const ok = await postJson(`${gw.baseUrl}/chat/completions`, chat);
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /shed/);
      const g = await readAll(client.generate(generateRequest("local/echo", "back")));
      assert.equal(g.error, undefined);
    } finally {
      client.close();
      await gw.close();
    }
  });

  it("takes a utilization in (0, 1] and names the field otherwise", () => {
    assert.equal(loadConfig(undefined, {}).limits.maxEventLoopUtilization, undefined);
    for (const bad of ["1.5", "0", "-0.2"]) {
      const p = join(mkdtempSync(join(tmpdir(), "spillway-")), "c.json");
      writeFileSync(p, `{"limits":{"maxEventLoopUtilization":${bad}}}`);
      assert.throws(() => loadConfig(p, {}), (e: unknown) => e instanceof ConfigError && /limits\.maxEventLoopUtilization/.test(e.message), bad);
    }
  });

  it("is off unless configured: a saturated loop slows requests but refuses none", async () => {
    const gw = await startTestGateway();
    const stop = saturate();
    try {
      await sleep(1000);
      const res = await postJson(`${gw.baseUrl}/chat/completions`, chat);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /shed/);
    } finally {
      stop();
      await gw.close();
    }
  });
});
