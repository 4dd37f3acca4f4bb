/**
 * `--workers 2` without Redis: the embedded stream log lives in the primary
 * and serves both workers, so a retrieve or a resume that lands on the
 * other worker (each request here on a new connection, which the kernel may
 * give to either) finds the response, live.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

const KEY = "sk-durable-workers-1";

/** One request on its own connection (no keep-alive). */
function send(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent: false, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The direct children of `pid` (the primary's workers). */
function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    for (const p of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (p) out.add(Number(p));
  }
  return [...out];
}

/** `send`, retried while no worker listens (they are being replaced). */
async function sendWhenUp(port: number, method: string, path: string): Promise<{ status: number; text: string }> {
  for (let i = 0; ; i++) {
    try {
      return await send(port, method, path);
    } catch (e) {
      if (i > 500) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function sseEvents(text: string): Array<{ type: string; sequence_number: number; delta?: string }> {
  return text
    .split("\n\n")
    .map((f) => f.split("\n").find((l) => l.startsWith("data: ")))
    .filter((l): l is string => !!l)
    .map((l) => JSON.parse(l.slice(6)) as { type: string; sequence_number: number });
}

describe("--workers 2: one embedded stream log for every worker", () => {
  let child: ChildProcess;
  let port = 0;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "spillway-durable-workers-"));
    const config = join(dir, "c.yaml");
    writeFileSync(config, `http: { host: 127.0.0.1, port: 0 }\ngrpc: { enabled: false }\nauth: { keys: [{ key: ${KEY}, name: w }] }\nproviders: { local: { type: local, tokenDelayMs: 20 } }\n`);
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", config, "--workers", "2"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
    port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const line = out.split("\n").find((l) => l.includes("spillway listening"));
        if (line) resolve((JSON.parse(line) as { http: number }).http);
      });
      child.on("exit", () => reject(new Error(`gateway exited early: ${out}`)));
    });
  });
  after(() => {
    child?.kill("SIGKILL");
  });

  it("workers killed while one runs a background stream: the primary fails it (instance_lost), a client on a new worker sees it end", async () => {
    const input = Array.from({ length: 300 }, (_, i) => `k${i}`).join(" ");
    const created = await send(port, "POST", "/v1/responses", { model: "local/echo", input, background: true });
    const id = (JSON.parse(created.text) as { id: string }).id;
    for (const pid of childrenOf(child.pid!)) process.kill(pid, "SIGKILL");
    const r = await sendWhenUp(port, "GET", `/v1/responses/${id}?stream=true`);
    assert.equal(r.status, 200, r.text);
    const events = sseEvents(r.text) as Array<{ type: string; code?: string }>;
    assert.equal(events.at(-1)!.type, "response.failed");
    assert.equal(events.find((e) => e.type === "error")?.code, "instance_lost");
  });

  it("retrieve and resume find a background response from any worker, while it runs and after", async () => {
    const input = Array.from({ length: 25 }, (_, i) => `x${i}`).join(" ");
    const created = await send(port, "POST", "/v1/responses", { model: "local/echo", input, background: true });
    assert.equal(created.status, 200, created.text);
    const id = (JSON.parse(created.text) as { id: string }).id;
    // While it runs: a dozen fresh connections (spread over both workers by the kernel) all find it.
    const running = await Promise.all(Array.from({ length: 12 }, () => send(port, "GET", `/v1/responses/${id}`)));
    for (const r of running) assert.equal(r.status, 200, r.text);
    // Resume after event 3 from a fresh connection: exactly the rest, to the end.
    const resumed = await send(port, "GET", `/v1/responses/${id}?stream=true&starting_after=3`);
    const events = sseEvents(resumed.text);
    assert.equal(events[0]!.sequence_number, 4);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i + 4));
    assert.equal(events.at(-1)!.type, "response.completed");
    const done = await Promise.all(Array.from({ length: 12 }, () => send(port, "GET", `/v1/responses/${id}`)));
    for (const r of done) {
      const body = JSON.parse(r.text) as { status: string; output: Array<{ content: Array<{ text: string }> }> };
      assert.equal(body.status, "completed");
      assert.equal(body.output[0]!.content[0]!.text, input);
    }
  });
});
