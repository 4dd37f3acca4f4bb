/**
 * Durable streams on Redis: two real gateway processes share one real
 * redis-server. A background stream made on one is resumed on the other
 * while it runs and after it finished; SIGKILL of the first while a stream
 * runs ends it as failed, with a reason, for a client on the second. With
 * Redis down, stored requests get 503 and `store: false` keeps streaming.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { startTestGateway } from "./helpers/gateway.js";
import { redisSkip, startRedis, type TestRedis } from "./helpers/redis.js";

type Event = { type: string; sequence_number: number; delta?: string; message?: string; code?: string; response?: { id: string; status: string; error?: { message: string } | null } };

const KEY = "sk-durable-redis-1";
const WORDS = Array.from({ length: 40 }, (_, i) => `t${i}`).join(" ");

interface Proc {
  readonly child: ChildProcess;
  readonly client: OpenAI;
  readonly exit: Promise<number | null>;
}

async function startProcess(redisUrl: string, tokenDelayMs: number): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-durable-"));
  const config = join(dir, "c.yaml");
  writeFileSync(
    config,
    [
      "http: { host: 127.0.0.1, port: 0 }",
      "grpc: { enabled: false }",
      `redis: { url: "${redisUrl}" }`,
      `auth: { keys: [{ key: ${KEY}, name: shared }] }`,
      `providers: { local: { type: local, tokenDelayMs: ${tokenDelayMs} } }`,
      "",
    ].join("\n"),
  );
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", config, "--workers", "1"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes("spillway listening"));
      if (line) resolve((JSON.parse(line) as { http: number }).http);
    });
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", () => reject(new Error(`gateway exited early: ${out}`)));
  });
  return { child, exit, client: new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 }) };
}

async function collect(s: unknown): Promise<Event[]> {
  const out: Event[] = [];
  for await (const e of s as AsyncIterable<Event>) out.push(e);
  return out;
}

describe("durable streams on Redis, two gateway processes", { skip: redisSkip }, () => {
  let redis: TestRedis;
  let a: Proc;
  let b: Proc;
  before(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([startProcess(redis.url, 25), startProcess(redis.url, 25)]);
  });
  after(async () => {
    for (const p of [a, b]) if (p && p.child.exitCode === null) p.child.kill("SIGKILL");
    await redis?.stop();
  });

  it("a stream made on one instance is resumed on the other while it runs, then after it finished", async () => {
    const first: Event[] = [];
    for await (const e of (await a.client.responses.create({ model: "local/echo", input: WORDS, stream: true, background: true })) as AsyncIterable<Event>) {
      first.push(e);
      if (first.filter((x) => x.type === "response.output_text.delta").length === 4) break;
    }
    const id = first[0]!.response!.id;
    const last = first.at(-1)!.sequence_number;
    const rest = await collect(await b.client.responses.retrieve(id, { stream: true, starting_after: last }));
    const all = [...first, ...rest];
    assert.deepEqual(all.map((e) => e.sequence_number), all.map((_, i) => i), "no gap, no duplicate across instances");
    assert.equal(all.at(-1)!.type, "response.completed");
    const deltas = all.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    const onB = await b.client.responses.retrieve(id);
    assert.equal(onB.status, "completed");
    assert.equal(onB.output_text, deltas);
    // After the end: a full replay on B is exactly what the live client saw.
    assert.deepEqual(await collect(await b.client.responses.retrieve(id, { stream: true })), all);
  });

  it("cancel on the other instance aborts the generation where it runs", async () => {
    const created = await a.client.responses.create({ model: "local/echo", input: WORDS, background: true });
    const r = await b.client.responses.cancel(created.id);
    assert.equal(r.status, "cancelled");
    const events = await collect(await a.client.responses.retrieve(created.id, { stream: true }));
    assert.equal(events.at(-1)!.type, "response.incomplete", "OpenAI's stream events have no response.cancelled");
    assert.equal(events.at(-1)!.response!.status, "cancelled");
  });

  it("SIGKILL of the instance running a background stream: a client on the other sees it end failed, with a reason", async () => {
    const seen: Event[] = [];
    for await (const e of (await a.client.responses.create({ model: "local/echo", input: WORDS, stream: true, background: true })) as AsyncIterable<Event>) {
      seen.push(e);
      if (seen.some((x) => x.type === "response.output_text.delta")) break;
    }
    const id = seen[0]!.response!.id;
    a.child.kill("SIGKILL");
    await a.exit;
    const events = await collect(await b.client.responses.retrieve(id, { stream: true, starting_after: seen.at(-1)!.sequence_number }));
    const end = events.at(-1)!;
    assert.equal(end.type, "response.failed");
    assert.equal(end.response!.status, "failed");
    assert.match(end.response!.error!.message, /instance .* stopped/);
    const err = events.find((e) => e.type === "error")!;
    assert.equal(err.code, "instance_lost");
    const stored = await b.client.responses.retrieve(id);
    assert.equal(stored.status, "failed");
  });
});

describe("shutdown with background responses running", { skip: redisSkip }, () => {
  it("a background response that outlives the grace ends failed with a reason another instance serves", async () => {
    const redis = await startRedis();
    const cfg = { redis: { url: redis.url }, providers: { local: { type: "local", tokenDelayMs: 30 } } };
    const one = await startTestGateway(cfg);
    const two = await startTestGateway(cfg);
    try {
      const c1 = new OpenAI({ apiKey: "x", baseURL: one.baseUrl, maxRetries: 0 });
      const c2 = new OpenAI({ apiKey: "x", baseURL: two.baseUrl, maxRetries: 0 });
      const created = await c1.responses.create({ model: "local/echo", input: WORDS, background: true });
      await one.gateway.close(0);
      const events = await collect(await c2.responses.retrieve(created.id, { stream: true }));
      assert.equal(events.at(-1)!.type, "response.failed");
      assert.equal(events.find((e) => e.type === "error")!.code, "server_shutting_down");
      assert.equal((await c2.responses.retrieve(created.id)).status, "failed");
    } finally {
      await two.close();
      await redis.stop();
    }
  });
});

describe("Redis down", { skip: redisSkip }, () => {
  it("stored and background requests get 503 naming the store; store: false keeps streaming", async () => {
    const redis = await startRedis();
    const url = redis.url;
    await redis.stop();
    const gw = await startTestGateway({ redis: { url, commandTimeoutMs: 100 } });
    try {
      const client = new OpenAI({ apiKey: "x", baseURL: gw.baseUrl, maxRetries: 0 });
      for (const body of [{ background: true }, {}]) {
        await assert.rejects(client.responses.create({ model: "local/echo", input: "hi", ...body }), (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError && e.status === 503, String(e));
          assert.match(e.message, /stream store is unavailable/);
          return true;
        });
      }
      const r = await client.responses.create({ model: "local/echo", input: "still works", store: false });
      assert.equal(r.output_text, "still works");
      const chat = await client.chat.completions.create({ model: "local/echo", messages: [{ role: "user", content: "plain" }] });
      assert.equal(chat.choices[0]!.message.content, "plain");
    } finally {
      await gw.close();
    }
  });
});
