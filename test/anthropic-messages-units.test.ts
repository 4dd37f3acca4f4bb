/**
 * Units of the Anthropic Messages shape: the error table (engine error →
 * Anthropic status and type) and the stream encoder's block bookkeeping,
 * checked with the same event checker the end-to-end tests use.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "../src/engine/code.js";
import { SpillwayError } from "../src/engine/errors.js";
import type { EngineStream } from "../src/engine/active-stream.js";
import { anthropicStatusAndType } from "../src/doors/http/shapes/anthropic-messages/errors.js";
import { AnthropicSseEncoder } from "../src/doors/http/shapes/anthropic-messages/stream.js";
import { finishPayload, FinishReason, reasoningPayload, textPayload, toolCallPayload, usagePayload, type ChunkPayload } from "../src/engine/payload.js";
import { assertAnthropicStream } from "./helpers/anthropic-events.js";

describe("Anthropic error table", () => {
  const cases: Array<[SpillwayError, number, string]> = [
    [new SpillwayError(Code.InvalidArgument, "x"), 400, "invalid_request_error"],
    [new SpillwayError(Code.InvalidArgument, "x", { httpStatus: 415 }), 415, "invalid_request_error"],
    [new SpillwayError(Code.Unauthenticated, "x"), 401, "authentication_error"],
    [new SpillwayError(Code.PermissionDenied, "x", { httpStatus: 402 }), 402, "billing_error"],
    [new SpillwayError(Code.PermissionDenied, "x"), 403, "permission_error"],
    [new SpillwayError(Code.NotFound, "x"), 404, "not_found_error"],
    [new SpillwayError(Code.ResourceExhausted, "x", { httpStatus: 413 }), 413, "request_too_large"],
    [new SpillwayError(Code.ResourceExhausted, "x"), 429, "rate_limit_error"],
    [new SpillwayError(Code.Internal, "x"), 500, "api_error"],
    [new SpillwayError(Code.Unavailable, "x", { httpStatus: 502, reason: "upstream_error" }), 502, "api_error"],
    [new SpillwayError(Code.Unavailable, "x", { reason: "server_shutting_down" }), 503, "api_error"],
    [new SpillwayError(Code.DeadlineExceeded, "x"), 504, "timeout_error"],
    [new SpillwayError(Code.Unavailable, "x", { httpStatus: 503, reason: "server_overloaded" }), 529, "overloaded_error"],
    [new SpillwayError(Code.Unavailable, "x", { httpStatus: 503, reason: "upstream_overloaded" }), 529, "overloaded_error"],
    [new SpillwayError(Code.Unavailable, "x", { httpStatus: 503, reason: "provider_unavailable" }), 529, "overloaded_error"],
  ];
  for (const [err, status, type] of cases) {
    it(`${Code[err.code]} ${err.httpStatus ?? ""} ${err.reason ?? ""} → ${status} ${type}`, () => {
      assert.deepEqual(anthropicStatusAndType(err), { status, type });
    });
  }
});

describe("Anthropic stream encoder", () => {
  const stream = { id: "s1", created: 0, route: { model: "m", id: "p/m" } } as unknown as EngineStream;
  const encode = (payloads: ChunkPayload[]): string => {
    const e = new AnthropicSseEncoder(stream, 3);
    return e.start() + payloads.map((p, seq) => e.encode({ streamId: "s1", seq, payload: p })).join("");
  };

  it("switches blocks by kind, keeps indexes contiguous, and ends with message_delta + message_stop", () => {
    const text = encode([
      reasoningPayload({ index: 0, text: "hmm" }),
      reasoningPayload({ index: 0, signature: "sig" }),
      textPayload("a"),
      reasoningPayload({ index: 1, encrypted: "opaque" }),
      textPayload("b"),
      toolCallPayload({ index: 0, id: "t0", name: "f", arguments: '{"x":1}' }),
      usagePayload({ inputTokens: 10, outputTokens: 4, cachedInputTokens: 6 }),
      finishPayload(FinishReason.REASON_STOP),
    ]);
    const c = assertAnthropicStream(text);
    assert.deepEqual(c.blocks, ["thinking", "text", "redacted_thinking", "text", "tool_use"]);
    assert.equal(c.messageDelta.delta.stop_reason, "tool_use", "a plain stop after tool calls is tool_use");
    assert.deepEqual(c.messageDelta.usage, { input_tokens: 4, output_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 6 });
    assert.equal(c.frames[0]!.data.message.usage.input_tokens, 3, "message_start carries the estimate");
  });

  it("interleaved parallel tool calls never interleave blocks: the later call is held and sent whole", () => {
    const c = assertAnthropicStream(
      encode([
        toolCallPayload({ index: 0, id: "a", name: "f", arguments: "" }),
        toolCallPayload({ index: 1, id: "b", name: "g", arguments: '{"y":' }),
        toolCallPayload({ index: 0, id: "", name: "", arguments: '{"x":1}' }),
        toolCallPayload({ index: 1, id: "", name: "", arguments: "2}" }),
        finishPayload(FinishReason.REASON_TOOL_CALLS),
      ]),
    );
    assert.deepEqual(c.blocks, ["tool_use", "tool_use"]);
    const json = (i: number): string =>
      c.frames.filter((f) => f.event === "content_block_delta" && f.data.index === i).map((f) => f.data.delta.partial_json).join("");
    assert.equal(json(0), '{"x":1}');
    assert.equal(json(1), '{"y":2}');
  });

  it("length and stop sequences map to max_tokens and stop_sequence", () => {
    assert.equal(assertAnthropicStream(encode([textPayload("a"), finishPayload(FinishReason.REASON_LENGTH)])).messageDelta.delta.stop_reason, "max_tokens");
    const s = assertAnthropicStream(encode([textPayload("a"), finishPayload(FinishReason.REASON_STOP, "END")])).messageDelta.delta;
    assert.deepEqual([s.stop_reason, s.stop_sequence], ["stop_sequence", "END"]);
  });
});
