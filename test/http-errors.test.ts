/**
 * Bad input on every route of the chat/completions door: each gets the
 * OpenAI error body with the right status and the field named, and the
 * server keeps serving.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";
import { postJson } from "./helpers/sse.js";

describe("HTTP door bad input", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ http: { maxBodyBytes: 64 * 1024 } });
  });
  after(() => gw.close());

  async function expectError(res: Response, status: number, param?: string | null, message?: RegExp): Promise<any> {
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const body = JSON.parse(text);
    assertSchema("ErrorResponse", body);
    if (param !== undefined) assert.equal(body.error.param, param);
    if (message) assert.match(body.error.message, message);
    return body;
  }

  const user = [{ role: "user", content: "hi" }];

  for (const route of ["chat/completions", "completions"]) {
    it(`${route}: malformed JSON is a 400`, async () => {
      await expectError(await postJson(`${gw.baseUrl}/${route}`, '{"model": "local/echo",'), 400, null, /parse the JSON/);
    });
    it(`${route}: a JSON body that is not an object is a 400`, async () => {
      await expectError(await postJson(`${gw.baseUrl}/${route}`, "[1,2]"), 400, null, /JSON object/);
    });
    it(`${route}: a missing model is a 400 naming it`, async () => {
      await expectError(await postJson(`${gw.baseUrl}/${route}`, { messages: user, prompt: "x" }), 400, "model", /Missing required parameter: 'model'/);
    });
    it(`${route}: an unknown provider and an unknown local model are 404s`, async () => {
      const body = { model: "nosuch/model", messages: user, prompt: "x" };
      const b = await expectError(await postJson(`${gw.baseUrl}/${route}`, body), 404, "model", /no provider 'nosuch'/);
      assert.equal(b.error.code, "model_not_found");
      await expectError(await postJson(`${gw.baseUrl}/${route}`, { ...body, model: "local/nope" }), 404, "model");
      await expectError(await postJson(`${gw.baseUrl}/${route}`, { ...body, model: "no-prefix" }), 404, "model", /provider\/model/);
    });
    it(`${route}: a body over the limit is a 413, with or without Content-Length`, async () => {
      const big = JSON.stringify({ model: "local/echo", messages: [{ role: "user", content: "x".repeat(100_000) }], prompt: "x" });
      await expectError(await postJson(`${gw.baseUrl}/${route}`, big), 413, null, /larger than the limit/);
      // Chunked upload: no Content-Length, the limit is enforced while reading.
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${gw.baseUrl}/${route}`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        for (let i = 0; i < 10; i++) req.write(big.slice(i * 10_000, (i + 1) * 10_000));
        req.end(big.slice(100_000));
      });
      assert.equal(status, 413);
    });
    it(`${route}: a wrong content type is a 415`, async () => {
      const res = await fetch(`${gw.baseUrl}/${route}`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
      await expectError(res, 415, null, /application\/json/);
    });
    it(`${route}: GET is a 405`, async () => {
      await expectError(await fetch(`${gw.baseUrl}/${route}`), 405, null, /not allowed/);
    });
  }

  it("chat: invalid fields are 400s naming the field", async () => {
    const cases: Array<[unknown, string, RegExp?]> = [
      [{ model: "local/echo" }, "messages", /Missing required parameter/],
      [{ model: "local/echo", messages: [] }, "messages"],
      [{ model: "local/echo", messages: "hi" }, "messages"],
      [{ model: "local/echo", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
      [{ model: "local/echo", messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
      [{ model: "local/echo", messages: user, temperature: 3 }, "temperature"],
      [{ model: "local/echo", messages: user, max_tokens: -1 }, "max_tokens"],
      [{ model: "local/echo", messages: user, n: 2 }, "n", /n=1/],
      [{ model: "local/echo", messages: user, stream: "yes" }, "stream"],
      [{ model: 42, messages: user }, "model"],
      [{ model: "local/echo", messages: user, tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools[0].function.name"],
      [{ model: "local/echo", messages: [...user, { role: "tool", content: "r", tool_call_id: "call_x" }] }, "messages[1].tool_call_id", /does not answer/],
    ];
    for (const [body, param, message] of cases) {
      await expectError(await postJson(`${gw.baseUrl}/chat/completions`, body), 400, param, message);
    }
  });

  it("completions: invalid fields are 400s naming the field", async () => {
    await expectError(await postJson(`${gw.baseUrl}/completions`, { model: "local/echo" }), 400, "prompt");
    await expectError(await postJson(`${gw.baseUrl}/completions`, { model: "local/echo", prompt: "" }), 400, "prompt");
    await expectError(await postJson(`${gw.baseUrl}/completions`, { model: "local/echo", prompt: ["a", "b"] }), 400, "prompt");
  });

  it("unknown routes and models are 404s", async () => {
    await expectError(await fetch(`${gw.baseUrl}/nothing/here`), 404, null, /Unknown request URL/);
    await expectError(await fetch(`${gw.origin}/v2/chat`), 404);
    await expectError(await fetch(`${gw.baseUrl}/models/local/nope`), 404, "model");
  });

  it("answers CORS preflight", async () => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, { method: "OPTIONS" });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
  });

  it("echoes X-Request-Id, or makes one", async () => {
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: user }, { headers: { "x-request-id": "req-123" } });
    assert.equal(res.headers.get("x-request-id"), "req-123");
    const res2 = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: user });
    assert.match(res2.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });

  it("keeps serving after all of the above, and after clients that vanish mid-request", async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const req = request(`${gw.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "content-length": "1000" } });
        req.on("error", () => resolve());
        req.write('{"model":"local/echo","mess');
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 5);
      });
    }
    const res = await postJson(`${gw.baseUrl}/chat/completions`, { model: "local/echo", messages: user });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).choices[0].message.content, "hi");
  });
});
