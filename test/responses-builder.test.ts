/**
 * The Responses event builder on its own: sequences the HTTP tests do not
 * reach through a fake upstream (text after tool calls, content filter,
 * failure before any item), each event checked against ResponseStreamEvent.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Finish_Reason } from "../src/gen/spillway/v1/chunk.js";
import { ResponsesBuilder } from "../src/doors/http/shapes/openai-responses/builder.js";
import { parseResponses } from "../src/doors/http/shapes/openai-responses/request.js";
import { emptyUsage, type ChunkPayload } from "../src/engine/payload.js";
import { assertSchema } from "./helpers/openapi.js";
import { checkEvents, typeSequence } from "./helpers/responses.js";

function run(payloads: ChunkPayload[]): { events: Array<{ event: string; data: any }>; builder: ResponsesBuilder } {
  const events: Array<{ event: string; data: any }> = [];
  const { echo } = parseResponses({ model: "x/y", input: "hi" });
  const builder = new ResponsesBuilder({ id: "resp_abc", createdAt: 1, model: "y", echo }, (type, json) => events.push({ event: type, data: JSON.parse(json) }));
  builder.start();
  payloads.forEach((payload, seq) => builder.push({ streamId: "abc", seq, payload }));
  return { events, builder };
}

const text = (t: string): ChunkPayload => ({ $case: "text", value: { text: t } });
const call = (index: number, id: string, name: string, args: string): ChunkPayload => ({ $case: "toolCall", value: { index, id, name, arguments: args } });
const end = (reason: Finish_Reason): ChunkPayload[] => [
  { $case: "usage", value: { ...emptyUsage(), inputTokens: 3, outputTokens: 4, totalTokens: 7 } },
  { $case: "finish", value: { reason, stopSequence: "" } },
];

const reasoning = (t: string, summary: boolean, index = 0, extra: Partial<{ encrypted: string; id: string }> = {}): ChunkPayload => ({
  $case: "reasoning",
  value: { text: t, signature: "", encrypted: extra.encrypted ?? "", summary, index, id: extra.id ?? "" },
});

describe("ResponsesBuilder", () => {
  it("reasoning summaries, then raw reasoning, then text: reasoning items with their events, validated", () => {
    const { events, builder } = run([
      reasoning("Think", true, 0, { id: "rs_up" }),
      reasoning("ing.", true, 0, { encrypted: "enc1" }),
      reasoning("raw ", false, 1),
      reasoning("steps", false, 1),
      text("answer"),
      ...end(Finish_Reason.REASON_STOP),
    ]);
    checkEvents(events);
    const types = events.map((e) => e.event);
    assert.deepEqual(types.slice(2, 9), [
      "response.output_item.added",
      "response.reasoning_summary_part.added",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.done",
      "response.reasoning_summary_part.done",
      "response.output_item.done",
    ]);
    assert.ok(types.includes("response.reasoning_text.delta"));
    const r = builder.response as any;
    assert.deepEqual(
      r.output.map((o: any) => o.type),
      ["reasoning", "reasoning", "message"],
    );
    assert.equal(r.output[0].id, "rs_up", "the upstream's item id is kept");
    assert.deepEqual(r.output[0].summary, [{ type: "summary_text", text: "Thinking." }]);
    assert.equal(r.output[0].encrypted_content, "enc1");
    assert.deepEqual(r.output[1].content, [{ type: "reasoning_text", text: "raw steps" }]);
    assert.equal(r.output[2].content[0].text, "answer");
    for (const o of r.output) assertSchema("OutputItem", o);
  });


  it("text, two calls, then text again: four items, never mixed", () => {
    const { events, builder } = run([
      text("a"),
      call(0, "c0", "f", '{"x"'),
      call(1, "c1", "g", "{}"),
      call(0, "", "", ":1}"),
      text("b"),
      ...end(Finish_Reason.REASON_TOOL_CALLS),
    ]);
    checkEvents(events);
    const r = builder.response as any;
    assert.deepEqual(
      r.output.map((o: any) => [o.type, o.status, o.arguments ?? o.content[0].text]),
      [
        ["message", "completed", "a"],
        ["function_call", "completed", '{"x":1}'],
        ["function_call", "completed", "{}"],
        ["message", "completed", "b"],
      ],
    );
    assert.notEqual(r.output[0].id, r.output[3].id);
    assert.deepEqual(
      events.filter((e) => e.data.type === "response.output_item.done").map((e) => e.data.output_index),
      [0, 1, 2, 3],
    );
    assert.equal(r.usage.total_tokens, 7);
    assertSchema("Response", r);
  });

  it("a content filter ends it as incomplete", () => {
    const { events } = run([text("a"), ...end(Finish_Reason.REASON_CONTENT_FILTER)]);
    checkEvents(events);
    assert.equal(events.at(-1)!.data.type, "response.incomplete");
    assert.deepEqual(events.at(-1)!.data.response.incomplete_details, { reason: "content_filter" });
    assert.equal(events.at(-1)!.data.response.output[0].status, "incomplete");
  });

  it("an empty answer still completes", () => {
    const { events } = run(end(Finish_Reason.REASON_STOP));
    checkEvents(events);
    assert.deepEqual(typeSequence(events), ["response.created", "response.in_progress", "response.completed"]);
  });

  it("a rate-limit failure maps to the closed ResponseError codes", () => {
    const { events, builder } = run([
      text("a"),
      { $case: "error", value: { type: "rate_limit_error", code: "rate_limit_exceeded", message: "slow down", param: "", grpcCode: 8, retryable: true } },
    ]);
    checkEvents(events);
    assert.deepEqual(typeSequence(events).slice(-2), ["error", "response.failed"]);
    assert.deepEqual(events.at(-1)!.data.response.error, { code: "rate_limit_exceeded", message: "slow down" });
    assert.equal(builder.failure?.message, "slow down");
  });
});
