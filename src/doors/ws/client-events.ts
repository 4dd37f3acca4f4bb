/**
 * The client events a realtime session understands, as zod schemas: GA
 * shapes, with the beta fields accepted beside them (`modalities`,
 * `input_audio_format`, `turn_detection` at the top of the session, …).
 * {@link parseClientEvent} turns a text frame into a typed event or a
 * {@link RealtimeProblem} naming the field at fault.
 */
import { fieldProblem } from "../field-path.js";
import { z } from "zod";

const nonNeg = z.number().int().min(0);

const formatObject = z.object({
  type: z.enum(["audio/pcm", "audio/pcmu", "audio/pcma"], {
    error: "supported audio formats are audio/pcm (24 kHz pcm16), audio/pcmu and audio/pcma",
  }),
  rate: z.literal(24000, { error: "audio/pcm is supported at rate 24000 only" }).optional(),
});

const betaFormat = z.enum(["pcm16", "g711_ulaw", "g711_alaw"], {
  error: "supported audio formats are pcm16, g711_ulaw and g711_alaw",
});

const turnDetection = z.union([
  z.null(),
  z.object({
    type: z.enum(["server_vad", "semantic_vad"]).default("server_vad"),
    threshold: z.number().min(0).max(1).optional(),
    prefix_padding_ms: nonNeg.optional(),
    silence_duration_ms: nonNeg.optional(),
    create_response: z.boolean().optional(),
    interrupt_response: z.boolean().optional(),
    idle_timeout_ms: z.number().int().min(5000).max(30000).nullable().optional(),
    eagerness: z.enum(["low", "medium", "high", "auto"]).optional(),
  }),
]);

const transcription = z
  .object({ model: z.string().optional(), language: z.string().optional(), prompt: z.string().optional() })
  .nullable();

const modalities = z.array(z.enum(["text", "audio"])).min(1);

const functionTool = z.object({
  type: z.literal("function", { error: "only function tools are supported" }),
  name: z.string().min(1).max(64),
  description: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
});

/** A function tool as the client declares it. */
export type FunctionTool = z.infer<typeof functionTool>;

const toolChoice = z.union([
  z.enum(["auto", "none", "required"]),
  z.object({ type: z.literal("function"), name: z.string().min(1) }),
]);

/** `tool_choice`: a mode, or one function by name. */
export type ToolChoice = z.infer<typeof toolChoice>;

const sessionBody = z.object({
  type: z.enum(["realtime", "transcription"]).optional(),
  model: z.string().min(1).optional(),
  instructions: z.string().optional(),
  output_modalities: modalities.optional(),
  audio: z
    .object({
      input: z
        .object({
          format: formatObject.optional(),
          transcription: transcription.optional(),
          turn_detection: turnDetection.optional(),
          noise_reduction: z.unknown().optional(),
        })
        .optional(),
      output: z
        .object({
          format: formatObject.optional(),
          voice: z.string().min(1).optional(),
          speed: z.number().min(0.25).max(1.5).optional(),
        })
        .optional(),
    })
    .optional(),
  max_output_tokens: z.union([z.number().int().positive(), z.literal("inf")]).optional(),
  temperature: z.number().min(0).max(2).optional(),
  tools: z.array(functionTool).optional(),
  tool_choice: toolChoice.optional(),
  tracing: z.unknown().optional(),
  include: z.unknown().optional(),
  prompt: z.unknown().optional(),
  truncation: z.unknown().optional(),
  parallel_tool_calls: z.unknown().optional(),
  // Beta names of the same settings.
  modalities: modalities.optional(),
  voice: z.string().min(1).optional(),
  input_audio_format: betaFormat.optional(),
  output_audio_format: betaFormat.optional(),
  input_audio_transcription: transcription.optional(),
  turn_detection: turnDetection.optional(),
  input_audio_noise_reduction: z.unknown().optional(),
  max_response_output_tokens: z.union([z.number().int().positive(), z.literal("inf")]).optional(),
  speed: z.number().min(0.25).max(1.5).optional(),
});

/** The settings of `session.update` (GA and beta fields). */
export type SessionUpdate = z.infer<typeof sessionBody>;

const contentPart = z.object({
  type: z.enum(["input_text", "input_audio", "output_text", "output_audio", "text", "audio"]),
  text: z.string().optional(),
  audio: z.string().optional(),
  transcript: z.string().nullable().optional(),
});

const itemId = z.string().min(1).max(64).optional();

const item = z.discriminatedUnion("type", [
  z.object({
    id: itemId,
    type: z.literal("message"),
    object: z.string().optional(),
    status: z.string().optional(),
    role: z.enum(["user", "assistant", "system"]),
    content: z.array(contentPart),
  }),
  z.object({
    id: itemId,
    type: z.literal("function_call"),
    object: z.string().optional(),
    status: z.string().optional(),
    call_id: z.string().min(1),
    name: z.string().min(1),
    arguments: z.string(),
  }),
  z.object({
    id: itemId,
    type: z.literal("function_call_output"),
    object: z.string().optional(),
    status: z.string().optional(),
    call_id: z.string().min(1),
    output: z.string(),
  }),
]);

/** A conversation item as the client sends it. */
export type ClientItem = z.infer<typeof item>;

const eventId = z.string().max(512).optional();

const clientEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("session.update"), event_id: eventId, session: sessionBody }),
  z.object({ type: z.literal("input_audio_buffer.append"), event_id: eventId, audio: z.string() }),
  z.object({ type: z.literal("input_audio_buffer.commit"), event_id: eventId }),
  z.object({ type: z.literal("input_audio_buffer.clear"), event_id: eventId }),
  z.object({
    type: z.literal("conversation.item.create"),
    event_id: eventId,
    previous_item_id: z.string().nullable().optional(),
    item,
  }),
  z.object({ type: z.literal("conversation.item.delete"), event_id: eventId, item_id: z.string().min(1) }),
  z.object({ type: z.literal("conversation.item.retrieve"), event_id: eventId, item_id: z.string().min(1) }),
  z.object({
    type: z.literal("conversation.item.truncate"),
    event_id: eventId,
    item_id: z.string().min(1),
    content_index: nonNeg,
    audio_end_ms: nonNeg,
  }),
  z.object({
    type: z.literal("response.create"),
    event_id: eventId,
    response: z
      .object({
        output_modalities: modalities.optional(),
        modalities: modalities.optional(),
        instructions: z.string().optional(),
        max_output_tokens: z.union([z.number().int().positive(), z.literal("inf")]).optional(),
        conversation: z.string().optional(),
        metadata: z.record(z.string(), z.string()).nullable().optional(),
        audio: z.object({ output: z.object({ voice: z.string().optional() }).optional() }).optional(),
        voice: z.string().optional(),
        tools: z.array(functionTool).optional(),
        tool_choice: toolChoice.optional(),
      })
      .optional(),
  }),
  z.object({ type: z.literal("response.cancel"), event_id: eventId, response_id: z.string().optional() }),
]);

/** A valid client event. */
export type ClientEvent = z.infer<typeof clientEvent>;

/** The event types {@link parseClientEvent} knows. */
export const CLIENT_EVENT_TYPES: readonly string[] = clientEvent.options.map((o) => o.shape.type.value);

/** What is wrong with a client event, in the terms of OpenAI's `error` event. */
export interface RealtimeProblem {
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
  readonly eventId: string | null;
}

/** The start of an `input_audio_buffer.append` as JSON.stringify writes it (type, then audio). */
const APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"';

/** Parses one text frame. */
export function parseClientEvent(text: string): ClientEvent | RealtimeProblem {
  let raw: unknown;
  // The exact text a client's JSON.stringify({ type, audio }) makes (the openai SDK's): the audio without parsing the JSON.
  if (text.startsWith(APPEND_HEAD) && text.endsWith('"}')) {
    const audio = text.slice(APPEND_HEAD.length, -2);
    if (!audio.includes('"') && !audio.includes("\\")) return { type: "input_audio_buffer.append", audio };
  }
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return {
      code: "invalid_json",
      message: `The event could not be parsed as JSON (${(e as Error).message}).`,
      param: null,
      eventId: null,
    };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { code: "invalid_event", message: "An event must be a JSON object.", param: null, eventId: null };
  }
  const obj = raw as Record<string, unknown>;
  // The event of every 20 ms of audio, checked by hand (as its schema would): zod costs more than the rest of an append.
  if (obj["type"] === "input_audio_buffer.append" && typeof obj["audio"] === "string") {
    const id = obj["event_id"];
    if (id === undefined) return { type: "input_audio_buffer.append", audio: obj["audio"] };
    if (typeof id === "string" && id.length <= 512) return { type: "input_audio_buffer.append", event_id: id, audio: obj["audio"] };
  }
  const eventIdValue = typeof obj["event_id"] === "string" ? obj["event_id"] : null;
  if (typeof obj["type"] !== "string") {
    return { code: "missing_required_parameter", message: "Missing required parameter: 'type'.", param: "type", eventId: eventIdValue };
  }
  if (!CLIENT_EVENT_TYPES.includes(obj["type"])) {
    return {
      code: "invalid_value",
      message: `Invalid value: '${obj["type"].slice(0, 100)}'. Supported event types: ${CLIENT_EVENT_TYPES.join(", ")}.`,
      param: "type",
      eventId: eventIdValue,
    };
  }
  const r = clientEvent.safeParse(raw);
  if (r.success) return r.data;
  const { param, missing, message } = fieldProblem(r.error, raw);
  return {
    code: missing ? "missing_required_parameter" : "invalid_value",
    message,
    param: param || null,
    eventId: eventIdValue,
  };
}

/** True when `x` is a problem rather than an event. */
export function isProblem(x: ClientEvent | RealtimeProblem): x is RealtimeProblem {
  return !("type" in x);
}
