/**
 * Graceful shutdown of the real process: SIGTERM lets in-flight streams
 * finish within the grace period, answers new requests with 503, ends what
 * outlives the grace with an in-band error, and exits 0.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseSse, postJson } from "./helpers/sse.js";

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function startProcess(graceMs: number): Promise<{ child: ChildProcess; base: string; exit: Promise<number | null> }> {
  const [http, grpc] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "spillway-sd-"));
  const config = join(dir, "c.yaml");
  writeFileSync(config, `http: { host: 127.0.0.1, port: ${http} }\ngrpc: { host: 127.0.0.1, port: ${grpc} }\nshutdown: { graceMs: ${graceMs} }\nproviders: { local: { type: local, tokenDelayMs: 50 } }\n`);
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", config], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening")) resolve();
    });
    child.on("exit", () => reject(new Error(`gateway exited early: ${out}`)));
  });
  return { child, base: `http://127.0.0.1:${http}/v1`, exit };
}

const words = (n: number): string => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("graceful shutdown", () => {
  it("finishes in-flight streams within the grace, refuses new requests with 503, exits 0", async () => {
    const { child, base, exit } = await startProcess(5_000);
    // 20 tokens at 50 ms: about a second of streaming.
    const res = await postJson(`${base}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words(20) }], stream: true });
    assert.equal(res.status, 200);
    const body = res.text();
    await new Promise((r) => setTimeout(r, 150));
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 100));
    const refused = await postJson(`${base}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: "x" }] });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, "server_shutting_down");
    const ready = await fetch(base.replace("/v1", "/readyz"));
    assert.equal(ready.status, 503);
    const events = parseSse(await body);
    assert.equal(events.at(-1)!.data, "[DONE]", "the in-flight stream finished normally");
    const text = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0].delta.content ?? "").join("");
    assert.equal(text, words(20));
    assert.equal(await exit, 0);
  });

  it("ends streams that outlive the grace with an in-band error, then exits 0", async () => {
    const { child, base, exit } = await startProcess(200);
    const res = await postJson(`${base}/chat/completions`, { model: "local/echo", messages: [{ role: "user", content: words(200) }], stream: true });
    const body = res.text();
    await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGTERM");
    const events = parseSse(await body);
    const last = JSON.parse(events.at(-1)!.data);
    assert.equal(last.error.code, "server_shutting_down");
    assert.ok(events.length > 2, "what was streamed before is kept");
    assert.equal(await exit, 0);
  });
});
