/**
 * Property-based fuzzing of every JSON route with fast-check: random JSON,
 * mutated valid bodies and random bytes. Every answer must be a 2xx or a 4xx
 * with a valid OpenAI error body: never a 5xx from our own code, never a
 * crash (the gateway still answers afterwards).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ROUTES } from "../src/doors/http/routes/index.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { assertSchema } from "./helpers/openapi.js";

/** A valid body per route, the seed the mutations start from. */
const VALID: Record<string, Record<string, unknown>> = {
  "/v1/chat/completions": { model: "local/echo", messages: [{ role: "user", content: "hi" }], stream: false, max_tokens: 3 },
  "/v1/completions": { model: "local/echo", prompt: "hi", max_tokens: 3 },
  "/v1/responses": { model: "local/echo", input: "hi", max_output_tokens: 3 },
  "/v1/audio/speech": { model: "local/echo", input: "hi", voice: "alloy" },
};

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 300);

describe("fuzzing JSON routes", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ http: { maxBodyBytes: 256 * 1024 } });
  });
  after(() => gw.close());

  async function check(path: string, body: string | Uint8Array, contentType = "application/json"): Promise<void> {
    const res = await fetch(`${gw.origin}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
    const text = await res.text();
    assert.ok(res.status < 500, `${path} answered ${res.status} to ${String(body).slice(0, 300)}: ${text.slice(0, 300)}`);
    if (res.status >= 400) {
      const j = JSON.parse(text);
      assertSchema("ErrorResponse", j);
      assert.ok(j.error.message.length > 0);
    }
  }

  // OpenAI-shaped routes; the Anthropic ones are fuzzed in anthropic-messages-errors.test.ts (their error body differs).
  const jsonRoutes = ROUTES.filter((r) => r.method === "post" && r.body === "json" && r.shape.name === "openai");

  for (const route of jsonRoutes) {
    it(`${route.pattern}: random JSON values`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue(), async (v) => check(route.pattern, JSON.stringify(v))),
        { numRuns: RUNS },
      );
    });

    it(`${route.pattern}: random bytes and truncated JSON`, async () => {
      const valid = JSON.stringify(VALID[route.pattern] ?? { model: "local/echo" });
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n))),
          async (b) => check(route.pattern, b),
        ),
        { numRuns: RUNS },
      );
    });

    const seed = VALID[route.pattern];
    if (seed) {
      it(`${route.pattern}: valid bodies with fields replaced, removed or added`, async () => {
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
              return; // not representable as JSON (e.g. a bigint): nothing to send
            }
            await check(route.pattern, text);
          }),
          { numRuns: RUNS },
        );
      });
    }
  }

  it("still serves after the fuzzing", async () => {
    const res = await fetch(`${gw.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(VALID["/v1/chat/completions"]),
    });
    assert.equal(res.status, 200);
  });
});
