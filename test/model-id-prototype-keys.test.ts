/**
 * Model ids that are names of `Object.prototype` members ("constructor",
 * "valueOf", "__proto__", …) are unknown models, not lookups into the
 * prototype: every engine route (from the route table, so a route added
 * later is covered) and the gRPC door answer a client error, never a 500.
 * Found by the Anthropic fuzz test (count_tokens with model "valueOf").
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ROUTES } from "../src/doors/http/routes/index.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";

const NAMES = ["constructor", "valueOf", "toString", "__proto__", "hasOwnProperty", "isPrototypeOf"];

describe("model ids named like Object.prototype members", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ routing: { fallbacks: { "local/echo": ["local/echo"] } }, aliases: { fast: "local/echo" } });
  });
  after(() => gw.close());

  const routes = ROUTES.filter((r) => r.example);
  it("there are engine routes to check", () => assert.ok(routes.length >= 6, `${routes.length} routes`));

  for (const route of routes) {
    it(`${route.method.toUpperCase()} ${route.pattern}: a 4xx naming the model, never a 5xx`, async () => {
      const ex = route.example!();
      for (const name of NAMES) {
        const body = typeof ex.body === "string" ? ex.body.split(ex.model).join(name) : Buffer.from(Buffer.from(ex.body).toString("latin1").split(ex.model).join(name), "latin1");
        const res = await fetch(`${gw.origin}${route.pattern.replace("*", "local/echo")}`, { method: route.method.toUpperCase(), headers: { "content-type": ex.contentType }, body });
        const text = await res.text();
        assert.ok(res.status >= 400 && res.status < 500, `${route.pattern} with model '${name}' answered ${res.status}: ${text.slice(0, 200)}`);
        assert.match(text, new RegExp(name.replace(/_/g, "_")), `${route.pattern}: the error names '${name}'`);
      }
    });
  }

  it("gRPC Generate: NOT_FOUND, not INTERNAL", async () => {
    const c = spillwayClient(gw.grpcAddress!);
    try {
      for (const name of NAMES) {
        const got = await readAll(c.generate(generateRequest(name, "hi")));
        assert.equal(got.error?.code, 5, `${name}: ${got.error?.details}`);
      }
    } finally {
      c.close();
    }
  });
});
