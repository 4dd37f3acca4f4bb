/** Configuration: defaults, environment, and errors that name the field. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ConfigError, loadConfig } from "../src/config/load.js";

const run = promisify(execFile);

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), "spillway-")), "c.yaml");
  writeFileSync(p, text);
  return p;
}

describe("config", () => {
  it("defaults to the local engines on 8080/50051", () => {
    const c = loadConfig(undefined, {});
    assert.equal(c.http.port, 8080);
    assert.equal(c.grpc.port, 50051);
    assert.deepEqual(Object.keys(c.providers), ["local"]);
    assert.equal(c.limits.timeoutMs, 30_000);
  });

  it("reads OPENAI_* and ANTHROPIC_* as the SDKs do, and PORT/GRPC_PORT", () => {
    const c = loadConfig(undefined, {
      OPENAI_API_KEY: "sk-1",
      OPENAI_BASE_URL: "http://127.0.0.1:1234/v1",
      ANTHROPIC_API_KEY: "ak",
      PORT: "9000",
      GRPC_PORT: "9001",
    });
    assert.deepEqual(c.providers["openai"], { type: "openai", baseUrl: "http://127.0.0.1:1234/v1", apiKey: "sk-1" });
    assert.equal(c.providers["anthropic"]?.type, "anthropic");
    assert.equal(c.http.port, 9000);
    assert.equal(c.grpc.port, 9001);
  });

  it("reads REDIS_URL and the TLS files from the environment", () => {
    const c = loadConfig(undefined, { REDIS_URL: "redis://127.0.0.1:6379", SPILLWAY_TLS_CERT: "/c.pem", SPILLWAY_TLS_KEY: "/k.pem" });
    assert.equal(c.redis?.url, "redis://127.0.0.1:6379");
    assert.deepEqual(c.http.tls, { certFile: "/c.pem", keyFile: "/k.pem" });
    assert.throws(() => loadConfig(undefined, { SPILLWAY_TLS_CERT: "/c.pem" }), /http\.tls\.keyFile/);
  });

  it("reads YAML and JSON files", () => {
    const c = loadConfig(file("providers:\n  groq: { type: openai, baseUrl: 'https://api.groq.com/openai/v1', apiKey: k }\nlimits: { idleTimeoutMs: 5000 }\n"), {});
    assert.equal(c.providers["groq"]?.type, "openai");
    assert.equal(c.limits.idleTimeoutMs, 5000);
    const j = loadConfig(file('{"http": {"port": 1234}}'), {});
    assert.equal(j.http.port, 1234);
  });

  it("names the field at fault", () => {
    const cases: Array<[string, RegExp]> = [
      ["http: { port: 70000 }", /http\.port/],
      ["providers: { x: { type: openai } }", /providers\.x\.baseUrl/],
      ["providers: { x: { type: nope } }", /providers\.x\.type/],
      ["limits: { timeoutMs: -1 }", /limits\.timeoutMs/],
      ["unknownKey: 1", /unknownKey/],
      ["[1, 2]", /top level must be a mapping/],
      ["a: [", /not valid YAML/],
    ];
    for (const [text, re] of cases) {
      assert.throws(() => loadConfig(file(text), {}), (e: unknown) => e instanceof ConfigError && re.test(e.message), text);
    }
    assert.throws(() => loadConfig(undefined, { PORT: "abc" }), /PORT must be an integer/);
  });

  it("stops start-up with the message when the config is bad", async () => {
    const err = await run(process.execPath, ["--import", "tsx", "src/main.ts", "--config", file("http: { port: -5 }")]).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal((err as { code: number }).code, 1);
    assert.match((err as { stderr: string }).stderr, /invalid config: http\.port/);
  });
});
