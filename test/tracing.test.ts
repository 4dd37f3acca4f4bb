/**
 * OpenTelemetry tracing end to end: a test OTLP receiver on loopback decodes
 * the exported protobuf; spans from the HTTP, gRPC and WebSocket doors carry
 * the GenAI attributes, a retry shows as two attempt spans, and the client's
 * traceparent is continued and passed to the upstream.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import OpenAI from "openai";
import { pino } from "pino";
import { applyEnv, parseConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { chatEvents, startFakeOpenAi, type FakeUpstream } from "./helpers/fake-openai.js";
import { generateRequest, readAll, spillwayClient } from "./helpers/grpc.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./helpers/otlp-receiver.js";
import { RealtimeTestClient, realtimeUrl } from "./helpers/realtime.js";

const KEY = "sk-gateway-team-a-secret";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
const SERVER = 2;
const CLIENT = 3;

let receiver: OtlpReceiver;
let fake: FakeUpstream;
let gw: Gateway;
let origin: string;
const lines: any[] = [];

before(async () => {
  receiver = await startOtlpReceiver();
  fake = await startFakeOpenAi();
  const raw = {
    http: { host: "127.0.0.1", port: 0 },
    grpc: { host: "127.0.0.1", port: 0 },
    routing: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
    auth: { keys: [{ key: KEY, name: "team-a" }] },
    providers: { local: { type: "local", tokenDelayMs: 0 }, openai: { type: "openai", baseUrl: fake.baseUrl, apiKey: "sk-upstream" } },
  };
  // The standard variables, as a deployment would set them.
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", OTEL_EXPORTER_OTLP_HEADERS: "x-collector-token=t%3D1", OTEL_SERVICE_NAME: "spillway-test" };
  const dest = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  gw = await startGateway(parseConfig(applyEnv(raw, env)), { logger: pino({ level: "info" }, dest) });
  origin = `http://127.0.0.1:${gw.httpPort}`;
});

after(async () => {
  await gw.close();
  await fake.close();
  await receiver.close();
});

async function flush(): Promise<void> {
  await gw.obs.tracing!.flush();
}

/** Flushes until `find` sees its spans (the realtime door ends its span when the socket's close reaches the server). */
async function spansWhere(find: (spans: ReceivedSpan[]) => ReceivedSpan[], min = 1): Promise<ReceivedSpan[]> {
  for (let i = 0; i < 200; i++) {
    await flush();
    const got = find(receiver.spans);
    if (got.length >= min) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
  return find(receiver.spans);
}

function childrenOf(parent: ReceivedSpan): ReceivedSpan[] {
  return receiver.spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
}

describe("tracing", () => {
  it("HTTP: continues the client's trace, one attempt span per try (503 then success), traceparent sent upstream", async () => {
    let n = 0;
    fake.script = () => (n++ === 0 ? { status: 503 } : { events: chatEvents(["Hel", "lo"], [7, 2]) });
    const client = new OpenAI({ baseURL: `${origin}/v1`, apiKey: KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create(
      { model: "openai/gpt-fake", messages: [{ role: "user", content: "a secret prompt" }], stream: true },
      { headers: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`, "x-request-id": "trace-http-1" } },
    );
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    assert.equal(text, "Hello");

    const [server] = await spansWhere((all) => all.filter((s) => s.attributes["spillway.request_id"] === "trace-http-1" && s.kind === SERVER));
    assert.ok(server, "a server span for the request");
    assert.equal(server.name, "POST /v1/chat/completions");
    assert.equal(server.traceId, TRACE_ID, "the client's trace continues");
    assert.equal(server.parentSpanId, CLIENT_SPAN, "the client's span is the parent");
    assert.equal(server.resource["service.name"], "spillway-test");
    assert.equal(server.attributes["gen_ai.operation.name"], "chat");
    assert.equal(server.attributes["gen_ai.provider.name"], "openai");
    assert.equal(server.attributes["gen_ai.request.model"], "gpt-fake");
    assert.equal(server.attributes["gen_ai.response.model"], "gpt-fake");
    assert.equal(server.attributes["gen_ai.usage.input_tokens"], 7);
    assert.equal(server.attributes["gen_ai.usage.output_tokens"], 2);
    assert.deepEqual(server.attributes["gen_ai.response.finish_reasons"], ["stop"]);
    assert.equal(server.attributes["http.response.status_code"], 200);
    assert.equal(server.attributes["spillway.key.name"], "team-a");

    const attempts = childrenOf(server).filter((s) => s.kind === CLIENT).sort((a, b) => Number(a.attributes["spillway.attempt"]) - Number(b.attributes["spillway.attempt"]));
    assert.equal(attempts.length, 2, "the retry is a second attempt span");
    const [first, second] = attempts as [ReceivedSpan, ReceivedSpan];
    assert.equal(first.name, "chat gpt-fake");
    assert.equal(first.status, 2, "the 503 attempt is an error span");
    assert.equal(first.attributes["spillway.failed_before_first_chunk"], true);
    assert.ok(first.attributes["error.type"]);
    assert.equal(second.status, 0);
    assert.equal(second.attributes["gen_ai.usage.output_tokens"], 2);
    assert.ok(second.events.some((e) => e.name === "gen_ai.first_chunk"), "time to first chunk is an event");
    assert.ok(!first.events.some((e) => e.name === "gen_ai.first_chunk"));

    // Each upstream request carried its own attempt's span as the parent.
    const ups = fake.requests.slice(-2);
    assert.deepEqual(
      ups.map((r) => r.headers["traceparent"]),
      [`00-${TRACE_ID}-${first.spanId}-01`, `00-${TRACE_ID}-${second.spanId}-01`],
    );

    // No prompt text and no key anywhere in the exported spans.
    const exported = JSON.stringify(receiver.spans);
    assert.ok(!exported.includes("a secret prompt"));
    assert.ok(!exported.includes(KEY));
    // The exporter used the configured headers.
    assert.equal(receiver.exports[0]!["x-collector-token"], "t=1");
    // The log line carries the trace id.
    const line = lines.find((l) => l.requestId === "trace-http-1");
    assert.equal(line?.traceId, TRACE_ID);
  });

  it("HTTP without a client traceparent starts a new trace", async () => {
    fake.script = () => ({ events: chatEvents(["x"]) });
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "x-request-id": "trace-http-2" },
      body: JSON.stringify({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true }),
    });
    await res.text();
    const [server] = await spansWhere((all) => all.filter((s) => s.attributes["spillway.request_id"] === "trace-http-2" && s.kind === SERVER));
    assert.ok(server);
    assert.equal(server.parentSpanId, "");
    assert.match(server.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(server.traceId, TRACE_ID);
    const up = fake.requests.at(-1)!;
    assert.equal(up.headers["traceparent"], `00-${server.traceId}-${childrenOf(server)[0]!.spanId}-01`);
  });

  it("HTTP non-streamed chat (the whole-answer reader): traceparent sent upstream too", async () => {
    fake.script = () => ({ events: chatEvents(["whole"]) });
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "x-request-id": "trace-http-whole" },
      body: JSON.stringify({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    const [server] = await spansWhere((all) => all.filter((s) => s.attributes["spillway.request_id"] === "trace-http-whole" && s.kind === SERVER));
    assert.ok(server);
    const up = fake.requests.at(-1)!;
    assert.notEqual((up.body as { stream?: unknown }).stream, true);
    assert.equal(up.headers["traceparent"], `00-${server.traceId}-${childrenOf(server)[0]!.spanId}-01`);
  });

  it("gRPC: a server span from the call's traceparent metadata with an attempt child", async () => {
    const client = spillwayClient(`127.0.0.1:${gw.grpcPort}`);
    const md = new Metadata();
    md.set("authorization", `Bearer ${KEY}`);
    md.set("traceparent", `00-${TRACE_ID}-00000000000000aa-01`);
    md.set("x-request-id", "trace-grpc-1");
    const { chunks, error } = await readAll(client.generate(generateRequest("local/echo", "one two three"), md));
    client.close();
    assert.equal(error, undefined);
    assert.ok(chunks.length > 2);
    const [server] = await spansWhere((all) => all.filter((s) => s.kind === SERVER && s.parentSpanId === "00000000000000aa"));
    assert.ok(server, "a gRPC server span continuing the client's trace");
    assert.equal(server.name, "spillway.v1.SpillwayService/Generate");
    assert.equal(server.traceId, TRACE_ID);
    assert.equal(server.attributes["rpc.system"], "grpc");
    assert.equal(server.attributes["rpc.response.status_code"], "OK");
    assert.equal(server.attributes["gen_ai.provider.name"], "local");
    assert.equal(server.attributes["gen_ai.request.model"], "echo");
    assert.ok(Number(server.attributes["gen_ai.usage.output_tokens"]) > 0);
    assert.equal(server.attributes["spillway.key.name"], "team-a");
    const [attempt] = childrenOf(server);
    assert.ok(attempt);
    assert.equal(attempt.kind, CLIENT);
    assert.equal(attempt.name, "chat echo");
    assert.deepEqual(attempt.attributes["gen_ai.response.finish_reasons"], ["stop"]);
  });

  it("WebSocket: one span per realtime session, its responses' attempts as children", async () => {
    const c = await RealtimeTestClient.connect(realtimeUrl(origin), { headers: { authorization: `Bearer ${KEY}`, traceparent: `00-${TRACE_ID}-00000000000000bb-01` } });
    await c.next("session.created");
    c.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hello there." }] } });
    c.send({ type: "response.create", response: { output_modalities: ["text"] } });
    const done = await c.next("response.done");
    assert.equal(done.response.status, "completed");
    await c.close();
    const [session] = await spansWhere((all) => all.filter((s) => s.kind === SERVER && s.parentSpanId === "00000000000000bb"));
    assert.ok(session, "a session span continuing the upgrade's trace");
    assert.equal(session.name, "realtime session");
    assert.equal(session.traceId, TRACE_ID);
    assert.equal(session.attributes["spillway.door"], "ws");
    assert.equal(session.attributes["gen_ai.operation.name"], "realtime");
    assert.equal(session.attributes["spillway.key.name"], "team-a");
    const attempts = childrenOf(session);
    assert.ok(attempts.length >= 1, "the response's text generation is a child attempt");
    assert.ok(attempts.some((s) => s.attributes["gen_ai.operation.name"] === "chat" && s.attributes["gen_ai.provider.name"] === "local"));
  });
});

describe("tracing off", () => {
  it("creates no spans and sends no traceparent upstream", async () => {
    const up = await startFakeOpenAi(() => ({ events: chatEvents(["x"]) }));
    const raw = { http: { host: "127.0.0.1", port: 0 }, grpc: { enabled: false }, providers: { openai: { type: "openai", baseUrl: up.baseUrl, apiKey: "k" } } };
    const off = await startGateway(parseConfig(applyEnv(raw, {})), { logger: pino({ level: "silent" }) });
    try {
      assert.equal(off.obs.tracing, undefined);
      const res = await fetch(`http://127.0.0.1:${off.httpPort}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` },
        body: JSON.stringify({ model: "openai/gpt-fake", messages: [{ role: "user", content: "x" }], stream: true }),
      });
      await res.text();
      assert.equal(res.status, 200);
      assert.equal(up.requests[0]!.headers["traceparent"], undefined);
    } finally {
      await off.close();
      await up.close();
    }
  });

  it("reads the OTEL_* variables: traces endpoint as is, base endpoint + /v1/traces, service name default, protocol checked", () => {
    assert.equal(parseConfig(applyEnv({}, {})).tracing.endpoint, undefined);
    assert.equal(parseConfig(applyEnv({}, {})).tracing.serviceName, "spillway");
    assert.equal(parseConfig(applyEnv({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" })).tracing.endpoint, "http://c:4318/v1/traces");
    assert.equal(
      parseConfig(applyEnv({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:9/x" })).tracing.endpoint,
      "http://t:9/x",
    );
    assert.equal(parseConfig(applyEnv({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).tracing.endpoint, undefined);
    assert.throws(() => applyEnv({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }), /OTEL_EXPORTER_OTLP_PROTOCOL must be 'http\/protobuf'/);
  });
});
