/**
 * The gRPC door refuses a streaming call past capacity at the HTTP/2
 * stream, before grpc-js builds a call (issue 16, wave 8): the hook into
 * grpc-js (`stream-gate.ts`) is asked for every stream — this file fails if
 * a grpc-js upgrade stops calling it —; a stock grpc-js client sees the
 * refusal as `UNAVAILABLE` with the same trailers, and the same response
 * headers, as the interceptor's refusal; health, reflection and ListModels
 * are never refused; a call admitted right after refusals on the same
 * connection is served; the refusals are counted in the metrics as before.
 * Saturation is certain without timing: the process's stream cap.
 */
import assert from "node:assert/strict";
import { connect, constants, type IncomingHttpHeaders } from "node:http2";
import { after, before, describe, it } from "node:test";
import { credentials, makeGenericClientConstructor, Server, ServerCredentials, status, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { createGrpcDoor, type GrpcDoor } from "../src/doors/grpc/grpc-door.js";
import { installStreamGate } from "../src/doors/grpc/stream-gate.js";
import { Admission } from "../src/engine/admission.js";
import { GenerateRequest } from "../src/gen/spillway/v1/request.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { generateRequest, healthCheck, readAll, reflect, spillwayClient, trailer } from "./helpers/grpc.js";
import { until } from "./helpers/saturate.js";

const id = (b: Buffer): Buffer => b;
const ECHO = { path: "/t.T/Echo", requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id };
const REFUSE = { ...ECHO, path: "/t.T/Refuse" };
type TClient = { echo(b: Buffer, cb: (e: ServiceError | null, r?: Buffer) => void): void; refuse(b: Buffer, cb: (e: ServiceError | null, r?: Buffer) => void): void; close(): void };

function unary(client: TClient, method: "echo" | "refuse", b: Buffer): Promise<{ error: ServiceError | null; reply: Buffer | undefined }> {
  return new Promise((resolve) => client[method](b, (error, reply) => resolve({ error, reply })));
}

describe("the grpc-js hook (stream-gate.ts): fails if a grpc-js upgrade stops asking the gate", () => {
  let server: Server;
  let client: TClient;
  const seen: string[] = [];
  let handled = 0;

  before(async () => {
    server = new Server();
    const installed = installStreamGate(server, (stream, headers) => {
      const path = String(headers[":path"]);
      seen.push(path);
      if (path !== REFUSE.path) return false;
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto", "grpc-status": "14", "grpc-message": "gated", "x-gate": "yes" }, { endStream: true });
      stream.resume();
      return true;
    });
    assert.equal(installed, true, "grpc-js 1.x still has the private createHttp2Server the gate wraps");
    const impl: UntypedServiceImplementation = {
      echo: (call: { request: Buffer }, cb: (e: null, r: Buffer) => void) => {
        handled++;
        cb(null, call.request);
      },
      refuse: (call: { request: Buffer }, cb: (e: null, r: Buffer) => void) => {
        handled++;
        cb(null, call.request);
      },
    };
    server.addService({ echo: ECHO, refuse: REFUSE }, impl);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const Ctor = makeGenericClientConstructor({ echo: ECHO, refuse: REFUSE }, "T");
    client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as TClient;
  });
  after(() => {
    client.close();
    server.forceShutdown();
  });

  it("asks the gate for every stream; one it passes reaches grpc-js's handler, one it answers never does", async () => {
    const ok = await unary(client, "echo", Buffer.from("hi"));
    assert.equal(ok.error, null);
    assert.equal(ok.reply?.toString(), "hi");
    assert.deepEqual(seen, [ECHO.path], "the gate saw the call before grpc-js");
    assert.equal(handled, 1);

    const no = await unary(client, "refuse", Buffer.from("x"));
    assert.equal(no.error?.code, status.UNAVAILABLE);
    assert.equal(no.error?.details, "gated");
    assert.equal(no.error?.metadata.get("x-gate")[0], "yes");
    assert.equal(handled, 1, "grpc-js never ran the handler of the answered stream");

    // The same connection goes on serving.
    assert.equal((await unary(client, "echo", Buffer.from("again"))).reply?.toString(), "again");
    assert.deepEqual(seen, [ECHO.path, REFUSE.path, ECHO.path]);
  });
});

/** The response headers (trailers-only) a raw HTTP/2 Generate call to `port` gets, `date` left out. */
function rawHeaders(port: number): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const body = Buffer.from(GenerateRequest.encode(generateRequest("t/x", "hi")).finish());
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const req = session.request({ ":method": "POST", ":path": "/spillway.v1.SpillwayService/Generate", "content-type": "application/grpc", te: "trailers" });
    req.on("response", (h) => {
      const { date: _date, ...rest } = h;
      resolve(rest);
    });
    req.on("close", () => session.close());
    req.on("error", reject);
    req.end(frame);
  });
}

describe("gRPC door: the refusal at the HTTP/2 stream is the interceptor's refusal, sooner", () => {
  const doors: GrpcDoor[] = [];
  after(async () => {
    for (const d of doors) await d.shutdown(100);
  });

  it("sends the same response headers and trailers as the interceptor did (stream cap 0: every call refused)", async () => {
    const made = async (refuseAtStream: boolean): Promise<{ door: GrpcDoor; port: number }> => {
      const admission = new Admission([], { maxConcurrentStreams: 0 });
      const { createStreamEngine } = await import("../src/engine/stream-engine.js");
      const { createRouter } = await import("../src/engine/router.js");
      const door = createGrpcDoor({ engine: createStreamEngine({ admission, router: createRouter([]) }), refuseAtStream });
      doors.push(door);
      return { door, port: await door.listen("127.0.0.1", 0) };
    };
    const gate = await made(true);
    const interceptor = await made(false);
    const a = await rawHeaders(gate.port);
    const b = await rawHeaders(interceptor.port);
    assert.deepEqual(a, b);
    assert.equal(a["grpc-status"], String(status.UNAVAILABLE));
    assert.equal(a["spillway-error-code"], "server_overloaded");
    assert.equal(a[constants.HTTP2_HEADER_STATUS], 200);
    assert.equal(gate.door.streamRefusals, 1, "refused at the stream");
    assert.equal(interceptor.door.streamRefusals, undefined, "refuseAtStream: false leaves it to the interceptor");
  });
});

async function metricValue(gw: TestGateway, line: RegExp): Promise<number> {
  const m = line.exec(await (await fetch(`${gw.origin}/metrics`)).text());
  return m ? Number(m[1]) : 0;
}

describe("gRPC door at its stream cap, refusing at the HTTP/2 stream (a gateway)", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ providers: { local: { type: "local", tokenDelayMs: 100 } }, limits: { maxConcurrentStreams: 1 } });
  });
  after(async () => {
    await gw.close();
  });

  it("a stock client sees UNAVAILABLE + the trailers; health, reflection and ListModels answer; metrics count every refusal; an admitted call on the same connection right after is served", async () => {
    const client = spillwayClient(gw.grpcAddress!);
    const admission = gw.gateway.engine.admission;
    const enter = admission.enter.bind(admission);
    let entered = 0;
    admission.enter = () => {
      entered++;
      return enter();
    };
    try {
      const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(" ");
      const holder = client.generate(generateRequest("local/echo", words));
      const held = readAll(holder);
      await new Promise((resolve) => holder.once("data", resolve));
      assert.equal(admission.openStreams, 1, "the cap is full");
      const requestsBefore = await metricValue(gw, /^spillway_requests_total\{[^}]*door="grpc"[^}]*route="Generate"[^}]*status="Unavailable"[^}]*\} (\d+)$/m);
      const causeBefore = await metricValue(gw, /^spillway_overload_refusals_total\{cause="stream_cap"\} (\d+)$/m);
      const atStreamBefore = gw.gateway.grpc!.streamRefusals!;
      const enteredBefore = entered;

      const N = 5;
      for (let i = 0; i < N; i++) {
        const r = await readAll(client.generate(generateRequest("local/echo", "x")));
        assert.equal(r.error?.code, status.UNAVAILABLE, r.error?.details);
        assert.equal(trailer(r.error, "spillway-error-code"), "server_overloaded");
        assert.equal(trailer(r.error, "spillway-retryable"), "true");
        assert.equal(trailer(r.error, "spillway-retry-after-ms"), "1000");
        assert.match(r.error.details, /limits\.maxConcurrentStreams/);
        assert.equal(r.chunks.length, 0);
      }
      const t = client.transcribe();
      t.end();
      assert.equal((await readAll(t)).error?.code, status.UNAVAILABLE, "Transcribe (bidi) too");
      assert.equal((await readAll(client.attach({ streamId: "0".repeat(32) }))).error?.code, status.UNAVAILABLE, "Attach too");
      assert.equal(gw.gateway.grpc!.streamRefusals! - atStreamBefore, N + 2, "every one refused at the HTTP/2 stream");
      assert.equal(entered, enteredBefore, "none reached the interceptor's Admission.enter");

      // Never refused: health, reflection, the unary ListModels.
      assert.equal(await healthCheck(gw.grpcAddress!), "SERVING");
      assert.equal(await healthCheck(gw.grpcAddress!, "spillway.v1.SpillwayService"), "SERVING");
      assert.ok(JSON.stringify(await reflect(gw.grpcAddress!, { listServices: "" })).includes("spillway.v1.SpillwayService"));
      await new Promise<unknown>((resolve, reject) => client.listModels({}, (e, r) => (e ? reject(e) : resolve(r))));
      assert.equal(gw.gateway.grpc!.streamRefusals! - atStreamBefore, N + 2, "none of those was refused");

      // Counted as before: the request counter by status and the overload counter by cause.
      assert.equal((await metricValue(gw, /^spillway_requests_total\{[^}]*door="grpc"[^}]*route="Generate"[^}]*status="Unavailable"[^}]*\} (\d+)$/m)) - requestsBefore, N);
      assert.equal((await metricValue(gw, /^spillway_overload_refusals_total\{cause="stream_cap"\} (\d+)$/m)) - causeBefore, N + 2);

      // The held stream ends; the next call on the same client (the same HTTP/2 connection) is served.
      const done = await held;
      assert.equal(done.error, undefined, done.error?.details);
      await until(() => Promise.resolve(admission.openStreams === 0), "the slot is free");
      const ok = await readAll(client.generate(generateRequest("local/echo", "back again")));
      assert.equal(ok.error, undefined, ok.error?.details);
      assert.equal(ok.chunks.at(-1)?.payload?.$case, "finish");
      assert.equal(entered, enteredBefore + 1, "the admitted call went through the interceptor's Admission.enter once");
      assert.equal(admission.openStreams, 0);
    } finally {
      admission.enter = enter;
      client.close();
    }
  });
});

describe("the stream refusal and a stream the client already reset", () => {
  it("does not answer (nor throw) on a destroyed stream, still drains and records it", async () => {
    const { createStreamRefusal } = await import("../src/doors/grpc/stream-refusal.js");
    const { SpillwayError } = await import("../src/engine/errors.js");
    const { Code } = await import("../src/engine/code.js");
    const recorded: string[] = [];
    const refusal = createStreamRefusal({
      admission: { entryRefusal: () => new SpillwayError(Code.Unavailable, "full") } as unknown as Admission,
      check: { applies: () => true, enter: () => { throw new Error("not called"); }, refused: (_id: unknown, path: string) => void recorded.push(path) },
      paths: new Set(["/spillway.v1.SpillwayService/Generate"]),
    });
    let resumed = false;
    const stream = {
      destroyed: true,
      closed: true,
      once: () => stream,
      respond: () => {
        throw Object.assign(new Error("The stream has been destroyed"), { code: "ERR_HTTP2_INVALID_STREAM" });
      },
      resume: () => {
        resumed = true;
      },
    };
    const headers = { [constants.HTTP2_HEADER_PATH]: "/spillway.v1.SpillwayService/Generate", [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc" };
    assert.equal(refusal(stream as never, headers), true);
    assert.ok(resumed);
    assert.deepEqual(recorded, ["/spillway.v1.SpillwayService/Generate"]);
    assert.equal(refusal.refused, 1);
  });
});
