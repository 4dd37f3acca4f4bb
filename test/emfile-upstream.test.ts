/**
 * A gateway out of file descriptors is overloaded, not failing upstream: a
 * real `EMFILE` on the upstream connect (a child process at its own file
 * limit, `prlimit`) maps to 503 `server_overloaded`, retryable, not the
 * upstream's fault; and such a failure does not open the provider's
 * circuit, while an unreachable upstream does.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { SpillwayError } from "../src/engine/errors.js";
import type { Provider } from "../src/engine/provider.js";
import { createRouter } from "../src/engine/router.js";
import { createStreamEngine } from "../src/engine/stream-engine.js";
import { connectionError } from "../src/providers/shared/upstream-errors.js";
import { gatewayOutOfDescriptors } from "../src/engine/limits/out-of-descriptors.js";
import { generateRequest } from "./helpers/generate-request.js";

const req = generateRequest();

describe("out of file descriptors", () => {
  it("a real EMFILE on the upstream connect is 503 server_overloaded, retryable, not from the upstream", { skip: existsSync("/usr/bin/prlimit") ? false : "prlimit (util-linux) missing" }, async () => {
    const upstream = createServer((_q, r) => r.end("{}"));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const { port } = upstream.address() as AddressInfo;
    try {
      const child = spawnSync("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", "test/fixtures/emfile-connect.ts", `http://127.0.0.1:${port}/v1/chat/completions`], {
        encoding: "utf8",
        timeout: 60_000,
      });
      const out = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
      assert.ok((out["held"] as number) > 0, "the child took the free descriptors");
      assert.equal(out["reason"], "server_overloaded", JSON.stringify(out));
      assert.equal(out["status"], 503);
      assert.equal(out["retryable"], true);
      assert.equal(out["fromUpstream"], false);
      assert.equal(out["retryAfterMs"], 1000, "a Retry-After for the client");
    } finally {
      upstream.close();
    }
  });

  it("a real EMFILE on an upstream WebSocket open (Deepgram, ElevenLabs) is the same overload", { skip: existsSync("/usr/bin/prlimit") ? false : "prlimit (util-linux) missing" }, async () => {
    const upstream = createServer((_q, r) => r.end("{}"));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const { port } = upstream.address() as AddressInfo;
    try {
      const child = spawnSync("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", "test/fixtures/emfile-connect.ts", `ws://127.0.0.1:${port}/v1/listen`, "ws"], { encoding: "utf8", timeout: 60_000 });
      const out = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
      assert.ok((out["held"] as number) > 0, "the child took the free descriptors");
      assert.equal(out["reason"], "server_overloaded", JSON.stringify(out));
      assert.equal(out["status"], 503);
      assert.equal(out["retryable"], true);
      assert.equal(out["fromUpstream"], false);
      assert.equal(out["retryAfterMs"], 1000);
    } finally {
      upstream.close();
    }
  });

  it("a real EMFILE spawning a local engine's child process (espeak-ng, pocketsphinx) is the same overload, not an internal error", { skip: existsSync("/usr/bin/prlimit") ? false : "prlimit (util-linux) missing" }, () => {
    const child = spawnSync("prlimit", ["--nofile=256:256", process.execPath, "--import", "tsx", "test/fixtures/emfile-connect.ts", "-", "child"], { encoding: "utf8", timeout: 60_000 });
    const out = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
    assert.ok((out["held"] as number) > 0, "the child took the free descriptors");
    assert.equal(out["reason"], "server_overloaded", JSON.stringify(out));
    assert.equal(out["status"], 503);
    assert.equal(out["retryable"], true);
    assert.equal(out["retryAfterMs"], 1000);
  });

  it("the mapping looks through causes (undici wraps the socket's error)", () => {
    const wrapped = new TypeError("fetch failed", { cause: Object.assign(new Error("connect EMFILE 127.0.0.1:1"), { code: "EMFILE" }) });
    assert.equal(connectionError("p", wrapped, new AbortController().signal).reason, "server_overloaded");
    const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) });
    assert.equal(connectionError("p", refused, new AbortController().signal).reason, "upstream_unreachable");
  });

  it("does not open the provider's circuit; an unreachable upstream does", async () => {
    let calls = 0;
    let fail: () => SpillwayError = () => gatewayOutOfDescriptors("t");
    const provider: Provider = {
      name: "t",
      listModels: () => Promise.resolve([]),
      generate: async function* () {
        calls++;
        throw fail();
      },
    };
    const engine = createStreamEngine({ router: createRouter([provider]), routing: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, breakerThreshold: 1, breakerCooldownMs: 60_000, fallbacks: {} } as never });
    const attempt = async (): Promise<SpillwayError> => {
      try {
        for await (const _ of await engine.generate(req)) {
          // drain
        }
      } catch (e) {
        return SpillwayError.from(e);
      }
      throw new Error("the call succeeded");
    };
    for (let i = 0; i < 3; i++) assert.equal((await attempt()).reason, "server_overloaded");
    assert.equal(calls, 3, "every call reached the provider: the circuit stayed closed");
    fail = () => connectionError("t", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), new AbortController().signal);
    assert.equal((await attempt()).reason, "upstream_unreachable");
    assert.equal((await attempt()).reason, "provider_unavailable", "one unreachable failure opened the circuit (threshold 1)");
    assert.equal(calls, 4);
  });
});
