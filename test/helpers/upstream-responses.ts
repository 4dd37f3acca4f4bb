/**
 * OpenAI Responses API SSE as a real upstream sends it (`event:` lines,
 * `sequence_number`s), as raw SSE text for the fake OpenAI upstream's
 * `events` (with `done: false`: a Responses stream has no [DONE]).
 */

/** A function call the fake upstream makes, its arguments sent in `pieces`. */
export interface UpstreamCall {
  id: string;
  name: string;
  pieces: string[];
}

/** A reasoning output item the fake upstream streams before the answer. */
export interface UpstreamReasoning {
  /** The item's id (`rs_…`). */
  id: string;
  /** Summary pieces (`response.reasoning_summary_text.delta`) of one summary part. */
  summary?: string[];
  /** Several summary parts, each its pieces (instead of `summary`). */
  summaryParts?: string[][];
  /** Reasoning text pieces (`response.reasoning_text.delta`, as open-weight models send them). */
  text?: string[];
  /** `encrypted_content` of the finished item (`output_item.done`). */
  encrypted?: string;
}

/** What the fake upstream's response holds. */
export interface UpstreamAnswer {
  reasoning?: UpstreamReasoning;
  text?: string[];
  calls?: UpstreamCall[];
  usage?: { input: number; output: number; cached?: number; reasoning?: number };
  /** `response.incomplete` with this reason instead of `response.completed`. */
  incomplete?: "max_output_tokens" | "content_filter";
  /** Stop after this many events (a truncated upstream). */
  cutAfter?: number;
  /** Replace the terminal event with `error` + `response.failed`. */
  fail?: { code: string; message: string };
}

/** The raw SSE frames of an upstream Responses stream. */
export function upstreamResponses(a: UpstreamAnswer): string[] {
  let seq = 0;
  const frames: string[] = [];
  const ev = (type: string, fields: Record<string, unknown>): void => {
    frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields, sequence_number: seq++ })}\n\n`);
  };
  // A whole Response object, as OpenAI's schema has it.
  const base = {
    id: "resp_up1",
    object: "response",
    created_at: 1,
    model: "gpt-fake",
    output: [] as unknown[],
    tools: [],
    tool_choice: "auto",
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: {},
    parallel_tool_calls: true,
    temperature: 1,
    top_p: 1,
    text: { format: { type: "text" } },
    truncation: "disabled",
  };
  ev("response.created", { response: { ...base, status: "in_progress" } });
  ev("response.in_progress", { response: { ...base, status: "in_progress" } });
  const output: unknown[] = [];
  if (a.reasoning) {
    const r = a.reasoning;
    const item = { id: r.id, type: "reasoning", summary: [] as unknown[] };
    const outputIndex = output.length;
    ev("response.output_item.added", { output_index: outputIndex, item });
    const where = { item_id: r.id, output_index: outputIndex };
    const parts = r.summaryParts ?? (r.summary ? [r.summary] : []);
    parts.forEach((pieces, summary_index) => {
      ev("response.reasoning_summary_part.added", { ...where, summary_index, part: { type: "summary_text", text: "" } });
      for (const delta of pieces) ev("response.reasoning_summary_text.delta", { ...where, summary_index, delta });
      const text = pieces.join("");
      ev("response.reasoning_summary_text.done", { ...where, summary_index, text });
      ev("response.reasoning_summary_part.done", { ...where, summary_index, part: { type: "summary_text", text } });
    });
    for (const delta of r.text ?? []) ev("response.reasoning_text.delta", { ...where, content_index: 0, delta });
    if (r.text) ev("response.reasoning_text.done", { ...where, content_index: 0, text: r.text.join("") });
    const done: Record<string, unknown> = {
      ...item,
      summary: parts.map((pieces) => ({ type: "summary_text", text: pieces.join("") })),
      ...(r.text ? { content: [{ type: "reasoning_text", text: r.text.join("") }] } : {}),
      ...(r.encrypted ? { encrypted_content: r.encrypted } : {}),
    };
    ev("response.output_item.done", { output_index: outputIndex, item: done });
    output.push(done);
  }
  if (a.text) {
    const item = { id: "msg_up1", type: "message", status: "in_progress", role: "assistant", content: [] as unknown[] };
    ev("response.output_item.added", { output_index: output.length, item });
    const where = { item_id: "msg_up1", output_index: output.length, content_index: 0 };
    ev("response.content_part.added", { ...where, part: { type: "output_text", text: "", annotations: [], logprobs: [] } });
    for (const delta of a.text) ev("response.output_text.delta", { ...where, delta, logprobs: [] });
    const text = a.text.join("");
    ev("response.output_text.done", { ...where, text, logprobs: [] });
    const part = { type: "output_text", text, annotations: [], logprobs: [] };
    ev("response.content_part.done", { ...where, part });
    const done = { ...item, status: "completed", content: [part] };
    ev("response.output_item.done", { output_index: output.length, item: done });
    output.push(done);
  }
  for (const c of a.calls ?? []) {
    const id = `fc_up_${c.id}`;
    const item = { id, type: "function_call", status: "in_progress", arguments: "", call_id: c.id, name: c.name };
    const outputIndex = output.length;
    ev("response.output_item.added", { output_index: outputIndex, item });
    for (const delta of c.pieces) ev("response.function_call_arguments.delta", { item_id: id, output_index: outputIndex, delta });
    const args = c.pieces.join("");
    ev("response.function_call_arguments.done", { item_id: id, output_index: outputIndex, name: c.name, arguments: args });
    const done = { ...item, status: "completed", arguments: args };
    ev("response.output_item.done", { output_index: outputIndex, item: done });
    output.push(done);
  }
  const u = a.usage ?? { input: 9, output: 5 };
  const usage = {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cached ?? 0, cache_write_tokens: 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  };
  if (a.fail) {
    ev("error", { code: a.fail.code, message: a.fail.message, param: null });
    ev("response.failed", { response: { ...base, status: "failed", output, error: a.fail } });
  } else if (a.incomplete) {
    ev("response.incomplete", { response: { ...base, status: "incomplete", output, usage, incomplete_details: { reason: a.incomplete } } });
  } else {
    ev("response.completed", { response: { ...base, status: "completed", output, usage } });
  }
  return a.cutAfter === undefined ? frames : frames.slice(0, a.cutAfter);
}
