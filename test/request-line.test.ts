/**
 * The `request finished` line written directly (request-line.ts) is byte
 * for byte what pino writes for the same fields, escapes included; loggers
 * it cannot match exactly are left to pino; the level is honoured.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { createLogger } from "../src/observability/logger.js";
import { writeRequestLine, type PinoLike, type RequestLineFields } from "../src/observability/request-line.js";

/** A destination that keeps every write as pino hands it over (one string a line). */
function sink(): { stream: { write(s: string): boolean }; out: string[] } {
  const out: string[] = [];
  return { stream: { write: (s: string) => (out.push(s), true) }, out };
}

const base: RequestLineFields = {
  requestId: "0b7c3a4e-5f0a-4a57-9d7e-3f9a1c2b8e11",
  streamId: "a1b2c3d4e5f60718293a4b5c6d7e8f90",
  door: "http",
  route: "/v1/chat/completions",
  shape: "openai",
  model: "mock/m",
  provider: "mock",
  caller: undefined,
  key: undefined,
  status: 200,
  outcome: "ok",
  ttftMs: 1.23,
  durationMs: 2.5,
  inputTokens: 5,
  outputTokens: 20,
  reasoningTokens: undefined,
  chunks: 22,
  bytesOut: 412,
  clientDisconnected: false,
  error: undefined,
  cache: undefined,
  cachedInputTokens: undefined,
  traceId: undefined,
  refusedUnlogged: undefined,
};

const cases: Array<[string, Partial<RequestLineFields>]> = [
  ["a plain non-streamed line", {}],
  ["every optional field set", { caller: "team-a", reasoningTokens: 3, cache: "hit", cachedInputTokens: 4, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", refusedUnlogged: 7, shape: undefined, streamId: undefined }],
  ["nothing the engine counted", { streamId: undefined, ttftMs: undefined, inputTokens: undefined, outputTokens: undefined, chunks: undefined, bytesOut: undefined, model: "none", provider: "none", status: 404, outcome: "client_error" }],
  ["a gRPC status name and an error", { door: "grpc", route: "Generate", status: "UNAVAILABLE", outcome: "server_error", error: { code: "Unavailable", message: 'upstream said "no" \\ twice\n\u0001' } }],
  ["an error whose code is unknown", { error: { code: undefined, message: "x" } }],
  ["quotes and backslashes", { requestId: 'a"b\\c"', model: 'm"\\' }],
  ["a control character", { requestId: "line\nbreak\ttab\u0000nul", model: "a\u001fb" }],
  ["a control character after a quote", { model: 'x"y\u0007' }],
  ["non-ASCII and emoji", { model: "modèle/日本語-🚀", requestId: "é" }],
  ["a lone surrogate", { model: "bad\ud800x", requestId: "\udc00" }],
  ["strings longer than 100 characters", { requestId: "r".repeat(101), model: `"${"q".repeat(120)}\\` }],
  ["exactly 100 characters with a quote", { requestId: `${"r".repeat(99)}"` }],
  ["numbers pino writes as null", { ttftMs: Number.NaN, durationMs: Number.POSITIVE_INFINITY, bytesOut: -0, chunks: 1e21 }],
  ["a disconnect", { clientDisconnected: true, status: 499, outcome: "cancelled" }],
];

type Opts = Parameters<typeof pino>[0] & object;

/** What pino itself writes for the line (no redaction, as the gateway's request logger). */
function viaPino(opts: Opts, fields: RequestLineFields): string {
  const { stream, out } = sink();
  pino(opts, stream).child({}, { redact: [] }).info(fields, "request finished");
  return out.join("");
}

const optionSets: Array<[string, Opts]> = [
  ["pino's defaults", { timestamp: () => ',"time":1' }],
  ["the gateway's options (base, redaction)", { timestamp: () => ',"time":1', base: { service: "spillway" }, redact: { paths: ["key", "*.key", "apiKey", "*.apiKey"], censor: "[redacted]" } }],
  ["a label level formatter and CRLF", { timestamp: () => ',"time":1', formatters: { level: (label) => ({ level: label }) }, crlf: true }],
];

describe("request line", () => {
  for (const [optName, opts] of optionSets) {
    for (const [name, patch] of cases) {
      it(`matches pino byte for byte: ${name}, ${optName}`, () => {
        const fields = { ...base, ...patch };
        const { stream, out } = sink();
        assert.equal(writeRequestLine(pino(opts, stream), fields), true);
        assert.equal(out.length, 1, "one write");
        assert.equal(out[0], viaPino(opts, fields));
        JSON.parse(out[0]);
      });
    }
  }

  it("matches pino through a child logger with bindings", () => {
    const opts: Opts = { timestamp: () => ',"time":1', base: { service: "spillway" } };
    const { stream, out } = sink();
    const child = pino(opts, stream).child({ worker: 2, "odd\"name": "v\\" });
    assert.equal(writeRequestLine(child, base), true);
    const ref = sink();
    pino(opts, ref.stream).child({ worker: 2, "odd\"name": "v\\" }).info(base, "request finished");
    assert.equal(out[0], ref.out[0]);
  });

  it("follows bindings replaced after the first line (setBindings)", () => {
    const opts: Opts = { timestamp: () => ',"time":1' };
    const { stream, out } = sink();
    const child = pino(opts, stream).child({ worker: 1 });
    writeRequestLine(child, base);
    child.setBindings({ worker: 2 });
    writeRequestLine(child, base);
    const ref = sink();
    const refChild = pino(opts, ref.stream).child({ worker: 1 });
    refChild.info(base, "request finished");
    refChild.setBindings({ worker: 2 });
    refChild.info(base, "request finished");
    assert.deepEqual(out, ref.out);
    assert.match(out[1]!, /"worker":2/);
  });

  it("writes the gateway logger's line with its service binding and a real time", () => {
    const out: string[] = [];
    const logger = createLogger({ write: (s: string) => void out.push(s) });
    assert.equal(writeRequestLine(logger, base), true);
    const line = JSON.parse(out[0]!) as Record<string, unknown>;
    assert.equal(line["level"], 30);
    assert.equal(line["service"], "spillway");
    assert.equal(typeof line["time"], "number");
    assert.equal(line["msg"], "request finished");
    assert.equal(line["requestId"], base.requestId);
    assert.ok(out[0]!.endsWith("}\n"));
  });

  it("honours the level: nothing is written above info", () => {
    const { stream, out } = sink();
    const logger = pino({ level: "warn" }, stream);
    assert.equal(writeRequestLine(logger, base), true);
    assert.equal(out.length, 0);
    logger.level = "info";
    assert.equal(writeRequestLine(logger, base), true);
    assert.equal(out.length, 1);
  });

  it("leaves to pino the loggers it cannot match exactly", () => {
    const loggers: Array<[string, PinoLike]> = [
      ["a mixin", pino({ mixin: () => ({ extra: 1 }) }, sink().stream)],
      ["a log formatter", pino({ formatters: { log: (o) => ({ wrapped: o }) } }, sink().stream)],
      ["a message prefix", pino({ msgPrefix: "[x] " }, sink().stream)],
      ["a nested key", pino({ nestedKey: "payload" }, sink().stream)],
      ["another message key", pino({ messageKey: "message" }, sink().stream)],
      ["a serializer on a field", pino({ serializers: { model: (m: string) => m.toUpperCase() } }, sink().stream)],
      ["a logMethod hook", pino({ hooks: { logMethod(args, method) { method.apply(this, args); } } }, sink().stream)],
      ["a streamWrite hook", pino({ hooks: { streamWrite: (s) => s } }, sink().stream)],
      ["a multistream", pino({}, pino.multistream([{ stream: sink().stream }]))],
      ["custom levels only", pino({ customLevels: { info: 35, fatal: 60 }, useOnlyCustomLevels: true, level: "info" }, sink().stream)],
    ];
    for (const [name, l] of loggers) assert.equal(writeRequestLine(l, base), false, name);
  });
});
