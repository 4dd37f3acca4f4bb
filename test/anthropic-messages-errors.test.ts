/**
 * Bad input on the Anthropic Messages routes, as the OpenAI routes have it
 * (test/http-errors.test.ts, test/fuzz.test.ts), in Anthropic's error
 * format: `{"type":"error","error":{"type","message"}}` with Anthropic's
 * statuses, the field named in the message; fuzzed bodies never get a 5xx,
 * and the server keeps serving.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import Anthropic from "@anthropic-ai/sdk";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertAnthropicError } from "./helpers/anthropic-events.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 300);
const user = [{ role: "user", content: "hi" }];
const VALID = { model: "local/echo", max_tokens: 5, messages: user };

describe("Anthropic Messages API bad input", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ http: { maxBodyBytes: 64 * 1024 } });
  });
  after(() => gw.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${gw.origin}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  async function expectError(res: Response, status: number, type: string, message?: RegExp): Promise<any> {
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.ok(res.headers.get("request-id"), "Anthropic's request-id header");
    const body = JSON.parse(text);
    assertAnthropicError(body, type);
    if (message) assert.match(body.error.message, message);
    return body;
  }

  for (const path of ["/v1/messages", "/anthropic/v1/messages"]) {
    it(`${path}: malformed JSON and non-object bodies are 400s`, async () => {
      await expectError(await post(path, '{"model": "local/echo",'), 400, "invalid_request_error", /parse the JSON/);
      await expectError(await post(path, "[1,2]"), 400, "invalid_request_error", /JSON object/);
    });
    it(`${path}: missing max_tokens, messages or model are 400s naming the field`, async () => {
      await expectError(await post(path, { model: "local/echo", messages: user }), 400, "invalid_request_error", /Missing required parameter: 'max_tokens'/);
      await expectError(await post(path, { model: "local/echo", max_tokens: 5 }), 400, "invalid_request_error", /Missing required parameter: 'messages'/);
      await expectError(await post(path, { max_tokens: 5, messages: user }), 400, "invalid_request_error", /'model'/);
    });
    it(`${path}: an unknown model is a 404 not_found_error`, async () => {
      await expectError(await post(path, { ...VALID, model: "nosuch/model" }), 404, "not_found_error", /no provider 'nosuch'/);
      await expectError(await post(path, { ...VALID, model: "claude-sonnet-4-5" }), 404, "not_found_error", /provider\/model/);
    });
    it(`${path}: a body over the limit is a 413 request_too_large, with or without Content-Length`, async () => {
      const big = JSON.stringify({ ...VALID, messages: [{ role: "user", content: "x".repeat(100_000) }] });
      await expectError(await post(path, big), 413, "request_too_large", /larger than the limit/);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${gw.origin}${path}`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        for (let i = 0; i < 10; i++) req.write(big.slice(i * 10_000, (i + 1) * 10_000));
        req.end(big.slice(100_000));
      });
      assert.equal(answer.status, 413);
      assertAnthropicError(JSON.parse(answer.body), "request_too_large");
    });
    it(`${path}: a wrong content type is a 415 invalid_request_error; GET a 405`, async () => {
      await expectError(await post(path, "{}", { "content-type": "text/plain" }), 415, "invalid_request_error", /application\/json/);
      await expectError(await fetch(`${gw.origin}${path}`), 405, "invalid_request_error", /not allowed/);
    });
  }

  it("invalid fields are 400s whose message names the field", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...VALID, messages: [] }, /'messages'/],
      [{ ...VALID, messages: "hi" }, /'messages'/],
      [{ ...VALID, messages: [{ role: "system", content: "x" }] }, /'messages\[0\]\.role'/],
      [{ ...VALID, messages: [{ role: "user", content: 5 }] }, /^Invalid 'messages\[0\]\.content': .*received number/],
      [{ ...VALID, messages: [{ role: "user", content: [{ type: "video", url: "x" }] }] }, /'messages\[0\]\.content\[0\]\.type'/],
      [{ ...VALID, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/tiff", data: "AA==" } }] }] }, /'messages\[0\]\.content\[0\]\.source\.media_type'/],
      [{ ...VALID, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }] }] }, /'messages\[0\]\.content\[0\]\.tool_use_id'.*does not answer/],
      [{ ...VALID, messages: [{ role: "user", content: [{ type: "tool_use", id: "t", name: "n", input: {} }] }] }, /'messages\[0\]\.content\[0\]\.type'.*user message/],
      [{ ...VALID, messages: [{ role: "assistant", content: [{ type: "tool_result", tool_use_id: "t" }] }] }, /'messages\[0\]\.content\[0\]\.type'.*assistant message/],
      [{ ...VALID, max_tokens: 0 }, /'max_tokens'/],
      [{ ...VALID, max_tokens: "5" }, /^Invalid 'max_tokens': .*received string/],
      [{ ...VALID, temperature: 2 }, /'temperature'/],
      [{ ...VALID, top_k: -1 }, /'top_k'/],
      [{ ...VALID, stream: "yes" }, /'stream'/],
      [{ ...VALID, system: [{ type: "image" }] }, /'system\[0\]\.type'/],
      [{ ...VALID, thinking: { type: "enabled", budget_tokens: 10 } }, /'thinking\.budget_tokens'.*1024/],
      [{ ...VALID, thinking: { type: "enabled" } }, /'thinking\.budget_tokens'/],
      [{ ...VALID, tools: [{ name: "bad name!", input_schema: { type: "object" } }] }, /'tools\[0\]\.name'/],
      [{ ...VALID, tools: [{ name: "t" }] }, /'tools\[0\]\.input_schema'/],
      [{ ...VALID, tools: [{ name: "t", input_schema: { type: "string" } }] }, /'tools\[0\]\.input_schema\.type'/],
      [{ ...VALID, tools: [{ name: "t", input_schema: { type: "object" } }, { type: "web_search_20250305", name: "web_search" }] }, /'tools\[1\]\.type'/],
      [{ ...VALID, tool_choice: { type: "sometimes" } }, /'tool_choice\.type'/],
      [{ ...VALID, tools: [{ name: "t", input_schema: { type: "object" } }], tool_choice: { type: "tool", name: "other" } }, /'tool_choice\.name'/],
    ];
    for (const [body, message] of cases) {
      await expectError(await post("/v1/messages", body), 400, "invalid_request_error", message);
    }
  });

  it("count_tokens: the same checks, without max_tokens", async () => {
    await expectError(await post("/v1/messages/count_tokens", { model: "local/echo" }), 400, "invalid_request_error", /Missing required parameter: 'messages'/);
    await expectError(await post("/v1/messages/count_tokens", "{"), 400, "invalid_request_error");
    await expectError(await post("/v1/messages/count_tokens", { model: "nosuch/x", messages: user }), 404, "not_found_error");
  });

  it("unknown URLs an Anthropic client calls are 404s in Anthropic's form; the SDK sees NotFoundError", async () => {
    await expectError(await fetch(`${gw.origin}/anthropic/v1/nothing`), 404, "not_found_error", /Unknown request URL/);
    await expectError(await fetch(`${gw.origin}/v1/other`, { headers: { "anthropic-version": "2023-06-01" } }), 404, "not_found_error");
    // Without Anthropic's marks, the default (OpenAI) form.
    const plain = (await (await fetch(`${gw.origin}/v1/other`)).json()) as any;
    assert.equal(typeof plain.error.message, "string");
    assert.equal(plain.type, undefined);
    const client = new Anthropic({ baseURL: `${gw.origin}/anthropic/v9`, apiKey: "x", maxRetries: 0 });
    await assert.rejects(client.messages.create({ model: "local/echo", max_tokens: 5, messages: [{ role: "user", content: "x" }] }), Anthropic.NotFoundError);
  });

  for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
    const check = async (body: string | Uint8Array): Promise<void> => {
      const res = await fetch(`${gw.origin}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
      const text = await res.text();
      assert.ok(res.status < 500, `${path} answered ${res.status} to ${String(body).slice(0, 300)}: ${text.slice(0, 300)}`);
      if (res.status >= 400) assertAnthropicError(JSON.parse(text));
    };
    it(`${path}: fuzzed JSON values, bytes, truncations and mutated valid bodies are never a 5xx`, async () => {
      await fc.assert(fc.asyncProperty(fc.jsonValue(), async (v) => check(JSON.stringify(v))), { numRuns: RUNS });
      const valid = JSON.stringify({ ...VALID, stream: true });
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n))), async (b) => check(b)),
        { numRuns: RUNS },
      );
      const seed: Record<string, unknown> = {
        ...VALID,
        stream: false,
        system: "s",
        thinking: { type: "enabled", budget_tokens: 1024 },
        tools: [{ name: "t", input_schema: { type: "object" } }],
        messages: [
          { role: "user", content: [{ type: "text", text: "q" }] },
          { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "t", input: {} }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "r" }] },
        ],
      };
      const keys = Object.keys(seed);
      const mutation = fc.oneof(
        fc.record({ kind: fc.constant("replace" as const), key: fc.constantFrom(...keys), value: fc.jsonValue() }),
        fc.record({ kind: fc.constant("remove" as const), key: fc.constantFrom(...keys), value: fc.constant(null) }),
        fc.record({ kind: fc.constant("add" as const), key: fc.string({ maxLength: 12 }), value: fc.jsonValue() }),
        fc.record({ kind: fc.constant("deep" as const), key: fc.constantFrom(...keys), value: fc.anything({ withNullPrototype: false, maxDepth: 3 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
          const body: Record<string, unknown> = structuredClone(seed);
          for (const m of ms) {
            if (m.kind === "remove") delete body[m.key];
            else body[m.key] = m.value;
          }
          let text: string;
          try {
            text = JSON.stringify(body) ?? "null";
          } catch {
            return;
          }
          await check(text);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("keeps serving after all of the above", async () => {
    const res = await post("/v1/messages", VALID);
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as any).content, [{ type: "text", text: "hi" }]);
  });
});

describe("Anthropic Messages API when the gateway is at capacity", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ limits: { maxConcurrentStreams: 1 }, providers: { local: { type: "local", tokenDelayMs: 200 } } });
  });
  after(() => gw.close());

  it("a stream over the gateway's stream limit is a 529 overloaded_error (the SDK's OverloadedError), with Retry-After", async () => {
    const client = new Anthropic({ baseURL: gw.origin, apiKey: "x", maxRetries: 0 });
    const first = client.messages.stream({ model: "local/echo", max_tokens: 50, messages: [{ role: "user", content: "a b c d e f g h" }] });
    await new Promise<void>((resolve) => first.on("text", () => resolve()));
    const res = await fetch(`${gw.origin}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "local/echo", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
    });
    assert.equal(res.status, 529);
    assert.ok(res.headers.get("retry-after"));
    assertAnthropicError(await res.json(), "overloaded_error");
    await assert.rejects(client.messages.create({ model: "local/echo", max_tokens: 5, messages: [{ role: "user", content: "x" }] }), (e: any) => {
      assert.equal(e.status, 529);
      assert.equal(e.constructor.name, "OverloadedError");
      return true;
    });
    first.abort();
    await first.done().catch(() => undefined);
  });
});
