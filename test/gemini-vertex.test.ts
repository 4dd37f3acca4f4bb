/**
 * Gemini on Vertex AI, and the Gemini configuration: the provider gets an
 * OAuth token for a service account (from google-auth-library, against the
 * fake's token endpoint, which checks the signed JWT grant), caches it,
 * refreshes it before it expires, calls Vertex's project paths with it; a
 * refused grant is a 401. The YAML shapes of the issue load as written;
 * bad settings name the field; the environment configures both as Google's
 * SDK reads it.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { applyEnv, loadConfig, parseConfig } from "../src/config/load.js";
import { startGateway } from "../src/gateway.js";
import { startFakeGemini, textAnswer, type FakeGemini } from "./helpers/fake-gemini.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { postJson } from "./helpers/sse.js";

const PATH = "/v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-fake-1:streamGenerateContent?alt=sse";
/** Where a non-streamed request goes: the whole answer from :generateContent. */
const WHOLE_PATH = "/v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-fake-1:generateContent";
const ask = (c: OpenAI) => c.chat.completions.create({ model: "vertex/gemini-fake-1", messages: [{ role: "user", content: "hi" }] });

describe("gemini provider on Vertex AI", () => {
  let fake: FakeGemini;
  before(async () => {
    fake = await startFakeGemini(() => ({ chunks: textAnswer(["from", " vertex"]) }));
  });
  after(() => fake.close());

  const start = (extra: Record<string, unknown> = {}): Promise<TestGateway> =>
    startTestGateway({
      routing: { maxAttempts: 1, breakerThreshold: 1000 },
      providers: {
        vertex: { type: "gemini", vertex: { project: "fake-project", location: "us-central1" }, baseUrl: fake.baseUrl, credentialsFile: fake.serviceAccountFile(), ...extra },
      },
    });

  it("calls the project's publisher model path with a bearer token, fetched once and reused", async () => {
    const gw = await start();
    try {
      fake.requests.length = 0;
      const before = fake.tokens.length;
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: "vertex/gemini-fake-1", messages: [{ role: "user", content: "hi" }], stream: true });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      assert.equal(text, "from vertex");
      assert.equal((await ask(client)).choices[0]!.message.content, "from vertex");
      assert.equal(fake.tokens.length, before + 1, "one token for both calls");
      const calls = fake.requests.filter((r) => r.url.includes("enerateContent"));
      assert.deepEqual(calls.map((r) => r.url), [PATH, WHOLE_PATH]);
      assert.deepEqual(calls.map((r) => r.headers["authorization"]), [`Bearer ${fake.tokens.at(-1)}`, `Bearer ${fake.tokens.at(-1)}`]);
      assert.equal(calls[0]!.headers["x-goog-api-key"], undefined);
      const token = fake.requests.find((r) => r.url === "/token")!;
      assert.match(String(token.body), /grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=/);

      const models = await client.models.list();
      assert.ok(models.data.some((m) => m.id === "vertex/gemini-fake-1"));
    } finally {
      await gw.close();
    }
  });

  it("a token about to expire is refreshed before the next call; a fresh one is reused", async () => {
    const gw = await start();
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      fake.requests.length = 0;
      // Within google-auth-library's 5-minute eager-refresh window: the next call must not use it.
      fake.tokenExpiresIn = 60;
      await ask(client);
      fake.tokenExpiresIn = 3600;
      await ask(client);
      await ask(client);
      const used = fake.requests.filter((r) => r.url === WHOLE_PATH).map((r) => r.headers["authorization"]);
      const [a, b, c] = used;
      assert.notEqual(a, b, "the expiring token was replaced");
      assert.equal(b, c, "the fresh token was reused");
      assert.equal(fake.requests.filter((r) => r.url === "/token").length, 2);
    } finally {
      fake.tokenExpiresIn = 3600;
      await gw.close();
    }
  });

  it("concurrent first calls share one token fetch", async () => {
    const gw = await start();
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      const before = fake.tokens.length;
      const answers = await Promise.all(Array.from({ length: 5 }, () => ask(client)));
      assert.ok(answers.every((a) => a.choices[0]!.message.content === "from vertex"));
      assert.equal(fake.tokens.length, before + 1);
    } finally {
      await gw.close();
    }
  });

  it("tokenUrl in the config overrides the file's token_uri (Google's default endpoint never contacted)", async () => {
    const gw = await start({ credentialsFile: fake.serviceAccountFile("https://oauth2.googleapis.com/token"), tokenUrl: fake.tokenUrl });
    try {
      const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: "unused", maxRetries: 0 });
      assert.equal((await ask(client)).choices[0]!.message.content, "from vertex");
    } finally {
      await gw.close();
    }
  });

  it("a refused grant is a 401 to the client; Vertex's own 401 too", async () => {
    const gw = await start();
    try {
      fake.tokenFailure = 400;
      const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "vertex/gemini-fake-1", messages: [{ role: "user", content: "hi" }] });
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /invalid_grant/);
    } finally {
      fake.tokenFailure = undefined;
      await gw.close();
    }
    const forged = await startFakeGemini();
    const gw2 = await startTestGateway({
      routing: { maxAttempts: 1 },
      // Tokens from one fake are unknown to another: Vertex answers 401 UNAUTHENTICATED.
      providers: { vertex: { type: "gemini", vertex: { project: "fake-project", location: "us-central1" }, baseUrl: forged.baseUrl, credentialsFile: fake.serviceAccountFile() } },
    });
    try {
      const res = await postJson(`${gw2.baseUrl}/chat/completions`, { model: "vertex/gemini-fake-1", messages: [{ role: "user", content: "hi" }] });
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /invalid authentication credentials/);
    } finally {
      await gw2.close();
      await forged.close();
    }
  });

  it("a credentials file that cannot be read stops the start, naming the field", async () => {
    await assert.rejects(
      startTestGateway({ providers: { vertex: { type: "gemini", vertex: { project: "p", location: "us-central1" }, credentialsFile: "/nonexistent/sa.json" } } }),
      /providers\.vertex\.credentialsFile: cannot read \/nonexistent\/sa\.json/,
    );
  });
});

describe("gemini provider and config reload", () => {
  it("a reload whose Vertex credentials file cannot be read is refused; the old config stays in force", async () => {
    const fake = await startFakeGemini(() => ({ chunks: textAnswer(["still", " here"]) }));
    const raw = {
      http: { host: "127.0.0.1", port: 0 },
      grpc: { enabled: false },
      admin: { key: "admin-key-0123456789" },
      providers: { vertex: { type: "gemini", vertex: { project: "fake-project", location: "us-central1" }, baseUrl: fake.baseUrl, credentialsFile: fake.serviceAccountFile() } },
    };
    const broken = { ...raw, providers: { vertex: { ...raw.providers.vertex, credentialsFile: "/nonexistent/sa.json" } } };
    const gateway = await startGateway(parseConfig(applyEnv(structuredClone(raw), {})), { loadConfig: () => parseConfig(applyEnv(structuredClone(broken), {})) });
    try {
      const origin = `http://127.0.0.1:${gateway.httpPort}`;
      const res = await fetch(`${origin}/admin/reload`, { method: "POST", headers: { authorization: "Bearer admin-key-0123456789" } });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /providers\.vertex\.credentialsFile: cannot read/);
      const client = new OpenAI({ baseURL: `${origin}/v1`, apiKey: "unused", maxRetries: 0 });
      assert.equal((await ask(client)).choices[0]!.message.content, "still here");
    } finally {
      await gateway.close();
      await fake.close();
    }
  });
});

describe("gemini configuration", () => {
  it("the issue's YAML shapes load as written", () => {
    const file = join(tmpdir(), `spillway-gemini-${process.pid}.yaml`);
    writeFileSync(
      file,
      [
        "providers:",
        "  gemini:  { type: gemini,  baseUrl: https://generativelanguage.googleapis.com, apiKey: AIza-x }",
        "  vertex:  { type: gemini,  vertex: { project: p, location: us-central1 }, credentialsFile: sa.json }",
      ].join("\n"),
    );
    const c = loadConfig(file, {});
    assert.deepEqual(c.providers["gemini"], { type: "gemini", baseUrl: "https://generativelanguage.googleapis.com", apiKey: "AIza-x" });
    assert.deepEqual(c.providers["vertex"], { type: "gemini", vertex: { project: "p", location: "us-central1" }, credentialsFile: "sa.json" });
  });

  it("bad settings are refused, naming the field", () => {
    const bad = (p: Record<string, unknown>, re: RegExp): void => assert.throws(() => parseConfig({ providers: { g: { type: "gemini", ...p } } }), re);
    bad({}, /providers\.g\.apiKey: required for Google AI Studio/);
    bad({ apiKey: "k", credentialsFile: "sa.json" }, /providers\.g\.credentialsFile: only used with vertex/);
    bad({ vertex: { project: "p", location: "us-central1" }, apiKey: "k" }, /providers\.g\.apiKey: not used with vertex/);
    bad({ vertex: { project: "p", location: "US Central" } }, /providers\.g\.vertex\.location: a Google Cloud location/);
    bad({ vertex: { location: "us-central1" } }, /providers\.g\.vertex\.project/);
    bad({ apiKey: "k", baseUrl: "not a url" }, /providers\.g\.baseUrl/);
    bad({ apiKey: "k", region: "x" }, /providers\.g: Unrecognized key: "region"/);
  });

  it("the environment configures gemini and vertex as @google/genai reads it", () => {
    const env = {
      GEMINI_API_KEY: "from-gemini",
      GOOGLE_API_KEY: "from-google",
      GOOGLE_GENAI_USE_VERTEXAI: "true",
      GOOGLE_CLOUD_PROJECT: "proj",
      GOOGLE_CLOUD_LOCATION: "europe-west4",
      GOOGLE_APPLICATION_CREDENTIALS: "/keys/sa.json",
    };
    const c = parseConfig(applyEnv({}, env));
    assert.deepEqual(c.providers["gemini"], { type: "gemini", apiKey: "from-google" }, "GOOGLE_API_KEY wins, as in Google's SDK");
    assert.deepEqual(c.providers["vertex"], { type: "gemini", vertex: { project: "proj", location: "europe-west4" }, credentialsFile: "/keys/sa.json" });
    const only = parseConfig(applyEnv({}, { GEMINI_API_KEY: "g", GOOGLE_GEMINI_BASE_URL: "http://127.0.0.1:9/" }));
    assert.deepEqual(only.providers["gemini"], { type: "gemini", apiKey: "g", baseUrl: "http://127.0.0.1:9/" });
    assert.equal(only.providers["vertex"], undefined);
    const file = parseConfig(applyEnv({ providers: { v: { type: "gemini", vertex: { project: "p", location: "global" }, credentialsFile: "mine.json" } } }, env));
    assert.equal((file.providers["v"] as { credentialsFile: string }).credentialsFile, "mine.json", "a file's own credentialsFile is kept");
    const vertexNamedGemini = parseConfig(applyEnv({ providers: { gemini: { type: "gemini", vertex: { project: "p", location: "us-central1" } } } }, { GEMINI_API_KEY: "g" }));
    assert.equal((vertexNamedGemini.providers["gemini"] as { apiKey?: string }).apiKey, undefined, "a Vertex provider named gemini takes no key from the environment");
  });
});
