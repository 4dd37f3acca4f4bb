/**
 * The gRPC door end to end with the local echo model and the generated
 * client: streamed Generate (order, seq, usage + finish last), ListModels,
 * health and reflection, bad input (each status with a message naming the
 * field), oversized messages, and the auth hook.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Metadata, status } from "@grpc/grpc-js";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import type { SpillwayServiceClient } from "../src/gen/spillway/v1/service.js";
import { createGrpcDoor, SPILLWAY_SERVICE_NAME } from "../src/doors/grpc/grpc-door.js";
import { ERROR_TRAILERS } from "../src/doors/grpc/status.js";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import {
  generateRequest,
  healthCheck,
  message,
  readAll,
  reflect,
  spillwayClient,
  trailer,
} from "./helpers/grpc.js";

describe("gRPC door with local/echo", () => {
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  before(async () => {
    gw = await startTestGateway({ grpc: { maxMessageBytes: 64 * 1024 } });
    client = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    client.close();
    await gw.close();
  });

  it("streams Generate token by token, seq monotonic, usage then finish last", async () => {
    const { chunks, error } = await readAll(client.generate(generateRequest("local/echo", "the quick brown fox")));
    assert.equal(error, undefined);
    const cases = chunks.map((c) => c.payload?.$case);
    assert.deepEqual(cases, ["text", "text", "text", "text", "usage", "finish"]);
    assert.equal(chunks.map((c) => (c.payload?.$case === "text" ? c.payload.value.text : "")).join(""), "the quick brown fox");
    assert.deepEqual(
      chunks.map((c) => c.seq),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(new Set(chunks.map((c) => c.streamId)).size, 1);
    assert.ok(chunks[0]!.streamId.length > 0);
    const usage = chunks[4]!.payload;
    assert.ok(usage?.$case === "usage");
    assert.equal(usage.value.outputTokens, 4);
    assert.equal(usage.value.totalTokens, usage.value.inputTokens + 4);
    const finish = chunks[5]!.payload;
    assert.ok(finish?.$case === "finish");
    assert.equal(finish.value.reason, Finish_Reason.REASON_STOP);
  });

  it("honours max_tokens and a legacy prompt", async () => {
    const { chunks, error } = await readAll(
      client.generate(generateRequest("local/echo", "", { messages: [], prompt: "one two three", maxTokens: 2 })),
    );
    assert.equal(error, undefined);
    assert.equal(chunks.filter((c) => c.payload?.$case === "text").length, 2);
    const finish = chunks.at(-1)!.payload;
    assert.ok(finish?.$case === "finish");
    assert.equal(finish.value.reason, Finish_Reason.REASON_LENGTH);
  });

  it("lists models (unary)", async () => {
    const res = await new Promise<{ models: Array<{ id: string; available: boolean }> }>((resolve, reject) =>
      client.listModels({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    const echo = res.models.find((m) => m.id === "local/echo");
    assert.ok(echo, `local/echo missing from ${res.models.map((m) => m.id).join(", ")}`);
    assert.equal(echo.available, true);
  });

  it("answers health checks with SERVING, for the server and the service", async () => {
    assert.equal(await healthCheck(gw.grpcAddress!), "SERVING");
    assert.equal(await healthCheck(gw.grpcAddress!, SPILLWAY_SERVICE_NAME), "SERVING");
  });

  it("lists and describes the service over server reflection", async () => {
    const listed = await reflect(gw.grpcAddress!, { listServices: "*" });
    const names: string[] = listed.listServicesResponse.service.map((s: { name: string }) => s.name);
    assert.ok(names.includes(SPILLWAY_SERVICE_NAME), `reflection lists: ${names.join(", ")}`);
    assert.ok(names.includes("grpc.health.v1.Health"), `reflection lists: ${names.join(", ")}`);
    const file = await reflect(gw.grpcAddress!, { fileContainingSymbol: SPILLWAY_SERVICE_NAME });
    const protos: Buffer[] = file.fileDescriptorResponse.fileDescriptorProto;
    assert.ok(protos.length > 0);
    const text = Buffer.concat(protos).toString("latin1");
    for (const name of ["SpillwayService", "Generate", "Transcribe", "GenerateRequest", "Chunk"]) {
      assert.ok(text.includes(name), `descriptor lacks ${name}`);
    }
  });

  describe("bad input: the right status, with a message naming the field", () => {
    const cases: Array<[string, Parameters<typeof generateRequest>, status, string]> = [
      ["missing model", ["", "hi"], status.INVALID_ARGUMENT, "model"],
      ["empty messages", ["local/echo", "", { messages: [] }], status.INVALID_ARGUMENT, "messages"],
      ["unknown model", ["local/nope", "hi"], status.NOT_FOUND, "model"],
      ["unknown provider", ["nobody/gpt", "hi"], status.NOT_FOUND, "model"],
      ["bad role", ["local/echo", "", { messages: [message("robot", "hi")] }], status.INVALID_ARGUMENT, "messages[0].role"],
      ["temperature out of range", ["local/echo", "hi", { temperature: 3 }], status.INVALID_ARGUMENT, "temperature"],
    ];
    for (const [name, args, code, field] of cases) {
      it(name, async () => {
        const { chunks, error } = await readAll(client.generate(generateRequest(...args)));
        assert.equal(chunks.length, 0, "no chunk before a failure status");
        assert.ok(error, "expected a non-OK status");
        assert.equal(error.code, code, `${status[error.code]}: ${error.details}`);
        assert.ok(error.details.includes(field), `'${error.details}' does not name ${field}`);
        assert.equal(trailer(error, ERROR_TRAILERS.param), field);
      });
    }

    it("an oversized request message fails with RESOURCE_EXHAUSTED (grpc.maxMessageBytes)", async () => {
      const big = "x".repeat(100 * 1024);
      const { chunks, error } = await readAll(client.generate(generateRequest("local/echo", big)));
      assert.equal(chunks.length, 0);
      assert.ok(error);
      assert.equal(error.code, status.RESOURCE_EXHAUSTED, `${status[error.code]}: ${error.details}`);
      assert.match(error.details, /larger than/);
    });

    it("the connection stays usable after errors", async () => {
      const { error } = await readAll(client.generate(generateRequest("local/echo", "still here")));
      assert.equal(error, undefined);
    });
  });
});

describe("gRPC door auth hook", () => {
  it("ends calls with the hook's status before touching the engine; lets good keys through", async () => {
    let engineCalls = 0;
    const gw = await startTestGateway({ grpc: { enabled: false } });
    const engine = {
      ...gw.gateway.engine,
      generate: (...a: Parameters<typeof gw.gateway.engine.generate>) => {
        engineCalls++;
        return gw.gateway.engine.generate(...a);
      },
    };
    const door = createGrpcDoor({
      engine,
      authorize: (md) => {
        if (md.get("authorization")[0] !== "Bearer good") {
          throw new SpillwayError(Code.Unauthenticated, "missing or invalid API key in the authorization metadata", {
            param: "authorization",
          });
        }
      },
    });
    const port = await door.listen("127.0.0.1", 0);
    const client = spillwayClient(`127.0.0.1:${port}`);
    try {
      const denied = await readAll(client.generate(generateRequest("local/echo", "hi")));
      assert.equal(denied.error?.code, status.UNAUTHENTICATED);
      assert.match(denied.error.details, /authorization/);
      assert.equal(engineCalls, 0);
      const md = new Metadata();
      md.set("authorization", "Bearer good");
      const ok = await readAll(client.generate(generateRequest("local/echo", "hi"), md));
      assert.equal(ok.error, undefined);
      assert.equal(engineCalls, 1);
      const list = await new Promise<unknown>((resolve) => client.listModels({}, (err) => resolve(err)));
      assert.equal((list as { code: number }).code, status.UNAUTHENTICATED);
    } finally {
      client.close();
      await door.shutdown(100);
      await gw.close();
    }
  });
});

describe("gRPC door with gateway keys (the same keys as HTTP)", () => {
  let gw: TestGateway;
  let client: SpillwayServiceClient;
  const bearer = (key: string): Metadata => {
    const md = new Metadata();
    md.set("authorization", `Bearer ${key}`);
    return md;
  };
  before(async () => {
    gw = await startTestGateway({ auth: { keys: [{ key: "sk-team-key-1", name: "team", models: ["local/echo"], rpm: 3 }] } });
    client = spillwayClient(gw.grpcAddress!);
  });
  after(async () => {
    client.close();
    await gw.close();
  });

  it("no key or a wrong key is UNAUTHENTICATED; a good key streams; a model outside the key's list is PERMISSION_DENIED; over rpm is RESOURCE_EXHAUSTED", async () => {
    const none = await readAll(client.generate(generateRequest("local/echo", "hi")));
    assert.equal(none.error?.code, status.UNAUTHENTICATED, none.error?.details);
    assert.match(none.error.details, /API key/);
    const wrong = await readAll(client.generate(generateRequest("local/echo", "hi"), bearer("sk-wrong-key-9")));
    assert.equal(wrong.error?.code, status.UNAUTHENTICATED);
    const models = await new Promise<{ code?: number } | null>((resolve) => client.listModels({}, (err) => resolve(err)));
    assert.equal(models?.code, status.UNAUTHENTICATED);

    const denied = await readAll(client.generate(generateRequest("local/tts", "hi"), bearer("sk-team-key-1")));
    assert.equal(denied.error?.code, status.PERMISSION_DENIED, denied.error?.details);
    assert.match(denied.error.details, /model/);

    for (let i = 0; i < 3; i++) {
      const ok = await readAll(client.generate(generateRequest("local/echo", "hi"), bearer("sk-team-key-1")));
      assert.equal(ok.error, undefined, `request ${i + 1} of the 3 per minute`);
      assert.equal(ok.chunks.at(-1)?.payload?.$case, "finish");
    }
    const limited = await readAll(client.generate(generateRequest("local/echo", "hi"), bearer("sk-team-key-1")));
    assert.equal(limited.error?.code, status.RESOURCE_EXHAUSTED, limited.error?.details);
    assert.match(limited.error.details, /3 requests per minute/);
    assert.ok(Number(trailer(limited.error, ERROR_TRAILERS.retryAfterMs)) > 0, "retry-after in the trailers");
  });
});

describe("gRPC door draining for shutdown", () => {
  it("reports NOT_SERVING and refuses new calls with UNAVAILABLE, then closes", async () => {
    const gw = await startTestGateway();
    const client = spillwayClient(gw.grpcAddress!);
    try {
      assert.equal(await healthCheck(gw.grpcAddress!), "SERVING");
      gw.gateway.grpc!.drain();
      assert.equal(await healthCheck(gw.grpcAddress!), "NOT_SERVING");
      assert.equal(await healthCheck(gw.grpcAddress!, SPILLWAY_SERVICE_NAME), "NOT_SERVING");
      const { error } = await readAll(client.generate(generateRequest("local/echo", "hi")));
      assert.equal(error?.code, status.UNAVAILABLE);
      assert.match(error.details, /shutting down/);
    } finally {
      client.close();
      await gw.close();
    }
  });
});
