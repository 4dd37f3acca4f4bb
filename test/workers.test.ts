/**
 * `--workers 2`: the real process runs two gateway workers that serve one
 * HTTP port and one gRPC port (both answer), and SIGTERM drains them all
 * (an in-flight stream finishes) and exits 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { get } from "node:http";
import { describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "./helpers/gateway-process.js";
import { generateRequest, spillwayClient } from "./helpers/grpc.js";
import { parseSse, postJson } from "./helpers/sse.js";

type Started = GatewayProcess;

function startWorkers(n: number): Promise<Started> {
  return startGatewayProcess(
    "http: { host: 127.0.0.1, port: 0 }\ngrpc: { host: 127.0.0.1, port: 0 }\nshutdown: { graceMs: 5000 }\nproviders: { local: { type: local, tokenDelayMs: 20 } }\n",
    n,
  );
}

/** GET /healthz on a new connection each time (no keep-alive), so the kernel may pick any worker. */
function healthPid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve((JSON.parse(body) as { pid: number }).pid));
    }).on("error", reject);
  });
}

describe("--workers", () => {
  it("serves one port from two worker processes, gRPC too, and exits 0 on SIGTERM after draining", async () => {
    const gw = await startWorkers(2);
    try {
      const pids = new Set<number>();
      for (let i = 0; i < 200 && pids.size < 2; i++) pids.add(await healthPid(gw.http));
      assert.equal(pids.size, 2, "two distinct worker processes answered on one port");
      assert.ok(!pids.has(gw.child.pid!), "the primary itself serves nothing");

      // gRPC on the shared port, over several connections.
      const clients = Array.from({ length: 4 }, () => spillwayClient(`127.0.0.1:${gw.grpc}`, { "grpc.use_local_subchannel_pool": 1 }));
      const texts = await Promise.all(
        clients.map(
          (c) =>
            new Promise<string>((resolve, reject) => {
              let text = "";
              const call = c.generate(generateRequest("local/echo", "one two three"));
              call.on("data", (ch: any) => {
                if (ch.payload?.$case === "text") text += ch.payload.value.text;
              });
              call.on("error", reject);
              call.on("end", () => resolve(text));
            }),
        ),
      );
      for (const c of clients) c.close();
      assert.deepEqual(texts, Array(4).fill("one two three"));

      // A stream in flight when SIGTERM comes finishes; then the process exits 0.
      const words = Array.from({ length: 20 }, (_, i) => `w${i}`).join(" ");
      const res = await postJson(`http://127.0.0.1:${gw.http}/v1/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words }], stream: true });
      assert.equal(res.status, 200);
      const body = res.text();
      await new Promise((r) => setTimeout(r, 100));
      gw.child.kill("SIGTERM");
      const events = parseSse(await body);
      assert.equal(events.at(-1)!.data, "[DONE]");
      assert.equal(await gw.exit, 0);
    } finally {
      if (gw.child.exitCode === null) gw.child.kill("SIGKILL");
    }
  });

  it("refuses a bad --workers value", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--workers", "zero"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    assert.equal(code, 1);
    assert.match(err, /--workers/);
  });
});
