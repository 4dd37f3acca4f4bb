/** Helpers for Responses API tests: raw event reading and schema checks. */
import assert from "node:assert/strict";
import { assertSchema } from "./openapi.js";
import { parseSse, postJson } from "./sse.js";

/** One Responses SSE event: the `event:` name and the parsed data. */
export interface ResponsesEvent {
  event: string | undefined;
  data: any;
}

/** POSTs a streamed Responses request with fetch and returns every event, checked for framing. */
export async function streamResponses(baseUrl: string, body: Record<string, unknown>): Promise<ResponsesEvent[]> {
  const res = await postJson(`${baseUrl}/responses`, { ...body, stream: true });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const text = await res.text();
  assert.ok(!text.includes("[DONE]"), "a Responses stream has no [DONE]");
  const events = parseSse(text).map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
  checkEvents(events);
  return events;
}

/**
 * Checks what every Responses stream must satisfy: `event:` equals the data's
 * `type`, `sequence_number` counts from 0 by one, each event validates
 * against ResponseStreamEvent, created/in_progress come first and exactly one
 * terminal event comes last.
 */
export function checkEvents(events: ResponsesEvent[]): void {
  assert.ok(events.length >= 3, `too few events: ${events.length}`);
  events.forEach((e, i) => {
    assert.equal(e.event, e.data.type, `event line of #${i}`);
    assert.equal(e.data.sequence_number, i, `sequence_number of #${i}`);
    assertSchema("ResponseStreamEvent", e.data);
  });
  assert.equal(events[0]!.data.type, "response.created");
  assert.equal(events[1]!.data.type, "response.in_progress");
  const terminal = ["response.completed", "response.incomplete", "response.failed"];
  assert.ok(terminal.includes(events.at(-1)!.data.type), `last event is ${events.at(-1)!.data.type}`);
  assert.equal(events.filter((e) => terminal.includes(e.data.type)).length, 1);
}

/** The event types in order, with consecutive repeats folded (`delta…`). */
export function typeSequence(events: ResponsesEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) if (out.at(-1) !== e.data.type) out.push(e.data.type);
  return out;
}

/** The event types of a plain text response, in OpenAI's order. */
export const TEXT_SEQUENCE = [
  "response.created",
  "response.in_progress",
  "response.output_item.added",
  "response.content_part.added",
  "response.output_text.delta",
  "response.output_text.done",
  "response.content_part.done",
  "response.output_item.done",
  "response.completed",
];

/**
 * The text of a Response's message items. The SDK adds `output_text` only to
 * non-streamed responses, so streamed ones are read from `output`.
 */
export function outputText(response: { output: ReadonlyArray<any> }): string {
  return response.output
    .filter((o) => o.type === "message")
    .flatMap((o) => o.content as any[])
    .map((c) => (c.type === "output_text" ? c.text : ""))
    .join("");
}
