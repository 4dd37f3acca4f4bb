/**
 * Config reload without dropping streams: SIGHUP (and POST /admin/reload)
 * re-read the config file; a stream open during the reload finishes
 * unchanged, a key added works at once, a removed key is refused, a broken
 * file leaves the old config in force — with one process and with 2 workers.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "./helpers/gateway-process.js";
import { parseSse } from "./helpers/sse.js";

const KEY_A = "sk-reload-key-a-1";
const KEY_B = "sk-reload-key-b-2";
const ADMIN = "admin-key-0123456789";

function yaml(keys: string[]): string {
  const list = keys.map((k, i) => `    - { key: ${k}, name: k${i} }`).join("\n");
  return `http: { host: 127.0.0.1, port: 0 }\ngrpc: { host: 127.0.0.1, port: 0 }\nadmin: { key: ${ADMIN} }\nproviders: { local: { type: local, tokenDelayMs: 40 } }\nauth:\n  keys:\n${list}\n`;
}

/** A chat request on a new connection (so with 2 workers any may answer): status and body. */
function chat(port: number, key: string, stream = false, content = "one two"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", agent: false, headers: { "content-type": "application/json", authorization: `Bearer ${key}` } },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ model: "local/echo", messages: [{ role: "user", content }], stream }));
  });
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/** Every one of `n` requests on new connections answers `status`. */
async function all(port: number, key: string, status: number, n = 8): Promise<boolean> {
  const got = await Promise.all(Array.from({ length: n }, () => chat(port, key)));
  return got.every((g) => g.status === status);
}

for (const workers of [1, 2]) {
  describe(`config reload (--workers ${workers})`, () => {
    it("SIGHUP: an open stream finishes unchanged, a new key works, a removed key is refused, a broken file changes nothing", async () => {
      const gw: GatewayProcess = await startGatewayProcess(yaml([KEY_A]), workers);
      try {
        assert.equal((await chat(gw.http, KEY_A)).status, 200);
        assert.equal((await chat(gw.http, KEY_B)).status, 401);
        // A stream of 30 tokens at 40 ms each is open while the config changes.
        const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
        const open = chat(gw.http, KEY_A, true, words);
        await new Promise((r) => setTimeout(r, 200));
        writeFileSync(gw.configPath, yaml([KEY_B]));
        gw.child.kill("SIGHUP");
        await until("key B accepted everywhere", () => all(gw.http, KEY_B, 200));
        assert.ok(await all(gw.http, KEY_A, 401), "the removed key is refused");
        const streamed = await open;
        assert.equal(streamed.status, 200);
        const events = parseSse(streamed.body);
        assert.equal(events.at(-1)!.data, "[DONE]");
        const text = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? "").join("");
        assert.equal(text, words, "the stream open during the reload finished unchanged");

        // A broken file: refused, the old config stays in force.
        writeFileSync(gw.configPath, "auth: { keys: [ { key: short, name: x } ] }\n");
        gw.child.kill("SIGHUP");
        await until("the refusal logged", () => Promise.resolve(gw.output().includes("config reload refused")));
        assert.ok(await all(gw.http, KEY_B, 200), "the old config is still in force");
        assert.match(gw.output(), /gateway keys must have at least 8 characters/);
      } finally {
        gw.child.kill("SIGKILL");
      }
    });

    it("POST /admin/reload needs the admin key and reloads every worker", async () => {
      const gw = await startGatewayProcess(yaml([KEY_A]), workers);
      try {
        writeFileSync(gw.configPath, yaml([KEY_A, KEY_B]));
        const post = (key: string): Promise<Response> => fetch(`http://127.0.0.1:${gw.http}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
        assert.equal((await post(KEY_A)).status, 401, "a gateway key is not the admin key");
        const ok = await post(ADMIN);
        assert.equal(ok.status, 200, await ok.clone().text());
        assert.equal(((await ok.json()) as { status: string }).status, "reloaded");
        await until("key B accepted everywhere", () => all(gw.http, KEY_B, 200));
        writeFileSync(gw.configPath, "providers: [1, 2]\n");
        const bad = await post(ADMIN);
        assert.equal(bad.status, 400);
        assert.match(await bad.text(), /providers/);
        assert.ok(await all(gw.http, KEY_B, 200));
      } finally {
        gw.child.kill("SIGKILL");
      }
    });
  });
}
