import { ResponseFormat_Type, type ContentPart, type GenerateRequest, type Message } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import type { Obj } from "../shared/json.js";
import { toolCallObjects } from "../shared/request-fields.js";
import { toGeminiParameters, toGeminiSchema } from "./gemini-schema.js";

/** A Gemini `Part` as sent upstream. */
type Part = Obj;

/** A Gemini `Content`: a role (`user` or `model`) and its parts. */
interface Content {
  role: "user" | "model";
  parts: Part[];
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

/** Media types guessed from a URL's extension, for `fileData` (which needs one). */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf",
  txt: "text/plain",
  wav: "audio/wav",
  mp3: "audio/mp3",
  mp4: "video/mp4",
};

function guessMediaType(url: string, fallback: string): string {
  const ext = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url)?.[1]?.toLowerCase();
  return (ext && BY_EXTENSION[ext]) || fallback;
}

/** A part for media given by URL: a `data:` URL inline, an http(s)/gs URL as `fileData`. */
function urlPart(url: string, mediaType: string, fallback: string, at: string): Part {
  const m = DATA_URL.exec(url);
  if (m) return { inlineData: { mimeType: m[1], data: m[2] } };
  if (/^(https?|gs):\/\//.test(url)) return { fileData: { mimeType: mediaType || guessMediaType(url, fallback), fileUri: url } };
  throw invalidArgument(`Invalid '${at}': Gemini models take media as http(s) or gs:// URLs, data: URLs or inline bytes.`, at);
}

function inline(data: Buffer | Uint8Array, mediaType: string, at: string): Part {
  if (!mediaType) throw invalidArgument(`Invalid '${at}': inline media needs a media type for Gemini models.`, at);
  return { inlineData: { mimeType: mediaType, data: Buffer.from(data).toString("base64") } };
}

/** Parts of one message, and a thought signature that ended them with no part after it to carry it. */
interface Converted {
  readonly parts: Part[];
  readonly signature: string;
}

/**
 * The Gemini parts of typed content parts. Reasoning parts send no text
 * (Gemini's thoughts are summaries it does not take back); in model turns
 * their signature goes on the next part, where Gemini put it.
 */
function typedParts(contents: readonly ContentPart[], at: string, signatures: boolean): Converted {
  const out: Part[] = [];
  let signature = "";
  contents.forEach((c, j) => {
    const where = `${at}.content[${j}]`;
    const p = c.part;
    let part: Part | undefined;
    switch (p?.$case) {
      case "text":
      case "refusal":
        if (p.value) part = { text: p.value };
        break;
      case "image":
        part = p.value.data.length > 0 ? inline(p.value.data, p.value.mediaType, where) : urlPart(p.value.url, p.value.mediaType, "image/jpeg", where);
        break;
      case "inputAudio":
        part = inline(p.value.data, `audio/${p.value.format || "wav"}`, where);
        break;
      case "file": {
        const f = p.value;
        if (f.data.length > 0) part = inline(f.data, f.mediaType, where);
        else if (f.url) part = urlPart(f.url, f.mediaType, "application/pdf", where);
        else if (f.text) part = { text: f.text };
        else if (/^https?:\/\//.test(f.fileId)) part = { fileData: { mimeType: f.mediaType || "application/pdf", fileUri: f.fileId } };
        else throw invalidArgument(`Invalid '${where}': Gemini models take files by URI (a Files API \`uri\`), URL or inline bytes, not by id.`, where);
        break;
      }
      case "reasoning":
        // Thought text is a summary Gemini does not read back; its signature belongs to the part that follows.
        if (signatures && p.value.signature) signature = p.value.signature;
        break;
      default:
        break;
    }
    if (!part) return;
    if (signature) {
      part["thoughtSignature"] = signature;
      signature = "";
    }
    out.push(part);
  });
  return { parts: out, signature };
}

function messageParts(m: Message, i: number, signatures = false): Converted {
  const at = `messages[${i}]`;
  if (m.contents.length > 0) return typedParts(m.contents, at, signatures);
  return { parts: m.content ? [{ text: m.content }] : [], signature: "" };
}

/** Text of a system message. */
function systemText(m: Message): string {
  if (m.contents.length === 0) return m.content;
  return m.contents.map((c) => (c.part?.$case === "text" ? c.part.value : "")).join("");
}

function parseArgs(m: Message, i: number): Part[] {
  return toolCallObjects(m, i, "Gemini").map(({ name, input }) => ({ functionCall: { name, args: input } }));
}

/**
 * Google's documented stand-in signature for replayed Gemini 3 function
 * calls whose real signature was lost (https://ai.google.dev/gemini-api/docs/thought-signatures):
 * without one, Gemini 3 refuses the whole request with a 400.
 */
export const SKIP_SIGNATURE = "skip_thought_signature_validator";

/** Models that refuse replayed function calls without a thought signature. */
const needsSignatures = (model: string): boolean => /^gemini-3[.-]/.test(model);

/**
 * A model turn: its content (thought parts with signatures), then its
 * function calls; a signature left over from the content goes on the first
 * call (Gemini 3 signs a step's first call and wants it back there). For
 * Gemini 3, a turn whose calls carry no signature at all (a client that
 * does not keep reasoning, such as OpenAI chat) gets {@link SKIP_SIGNATURE}
 * on its first call.
 */
function modelParts(m: Message, i: number, model: string): Part[] {
  const { parts, signature } = messageParts(m, i, true);
  const calls = parseArgs(m, i);
  if (signature && calls[0]) calls[0]["thoughtSignature"] = signature;
  if (calls[0] && needsSignatures(model) && !calls.some((c) => c["thoughtSignature"])) calls[0]["thoughtSignature"] = SKIP_SIGNATURE;
  return [...parts, ...calls];
}

/**
 * A tool result as a `functionResponse`: Gemini wants the function's `name`
 * (found from the call the message answers) and an object `response`. A
 * JSON object result is sent as it is; anything else as `{output}` (Google's
 * convention), or `{error}` when the tool reported a failure.
 */
function functionResponse(m: Message, i: number, names: ReadonlyMap<string, string>): Part {
  const name = names.get(m.toolCallId) || m.name;
  if (!name) throw invalidArgument(`Invalid 'messages[${i}].tool_call_id': no earlier assistant tool call has id '${m.toolCallId}', and Gemini needs the function's name.`, `messages[${i}].tool_call_id`);
  const text = m.contents.length > 0 ? m.contents.map((c) => (c.part?.$case === "text" ? c.part.value : "")).join("") : m.content;
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // Plain text result.
  }
  const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
  const response = m.toolError ? { error: value } : isObject ? value : { output: value };
  return { functionResponse: { name, response } };
}

/**
 * Converts chat messages into Gemini's shape: system and developer messages
 * become `systemInstruction`; assistant turns `model` turns (a reasoning
 * block's `thoughtSignature` on the part after it, tool calls as
 * `functionCall` parts); `tool` messages `functionResponse` parts; consecutive turns of one
 * role are merged, so the results of one turn's calls go in one user turn.
 * `model` (the upstream model name) decides whether unsigned calls need a
 * stand-in signature (Gemini 3).
 */
export function geminiContents(messages: readonly Message[], model = ""): { system: string; contents: Content[] } {
  const system: string[] = [];
  const contents: Content[] = [];
  const names = new Map<string, string>();
  const push = (role: "user" | "model", parts: Part[]): void => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  messages.forEach((m, i) => {
    switch (m.role) {
      case "system":
      case "developer": {
        const t = systemText(m);
        if (t) system.push(t);
        break;
      }
      case "assistant":
        for (const c of m.toolCalls) names.set(c.id, c.name);
        push("model", modelParts(m, i, model));
        break;
      case "tool":
        push("user", [functionResponse(m, i, names)]);
        break;
      default:
        push("user", messageParts(m, i).parts);
    }
  });
  return { system: system.join("\n\n"), contents };
}

function toolConfig(req: GenerateRequest): Obj | undefined {
  switch (req.toolChoice) {
    case "":
      return undefined;
    case "auto":
      return { functionCallingConfig: { mode: "AUTO" } };
    case "none":
      return { functionCallingConfig: { mode: "NONE" } };
    case "required":
      return { functionCallingConfig: { mode: "ANY" } };
    default:
      return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [req.toolChoice] } };
  }
}

/** OpenAI reasoning efforts as Gemini 2.5 thinking budgets (as Google's OpenAI compatibility layer maps them). */
const BUDGETS: Readonly<Record<string, number>> = { none: 0, minimal: 1024, low: 1024, medium: 8192, high: 24576 };

/** Efforts that are Gemini 3 thinking levels (sent in upper case, as Google's SDK sends its `ThinkingLevel` enum). */
const LEVELS: ReadonlySet<string> = new Set(["minimal", "low", "medium", "high"]);

/**
 * `thinkingConfig`: asked-for reasoning includes thought summaries
 * (`includeThoughts`, streamed as reasoning); a budget is `thinkingBudget`;
 * an effort is Gemini 3's `thinkingLevel` on `gemini-3…` models and a
 * budget on others; disabled reasoning is a zero budget.
 */
function thinkingConfig(model: string, req: GenerateRequest): Obj | undefined {
  const r = req.reasoning;
  if (!r) return undefined;
  if (r.disabled || r.effort === "none") return { thinkingBudget: 0 };
  const out: Obj = { includeThoughts: true };
  if (r.budgetTokens > 0) out["thinkingBudget"] = r.budgetTokens;
  else if (LEVELS.has(r.effort) && /gemini-3/.test(model)) out["thinkingLevel"] = r.effort.toUpperCase();
  else if (r.effort && BUDGETS[r.effort] !== undefined) out["thinkingBudget"] = BUDGETS[r.effort];
  return out;
}

function generationConfig(model: string, req: GenerateRequest): Obj {
  const g: Obj = {};
  if (req.maxTokens !== undefined) g["maxOutputTokens"] = req.maxTokens;
  if (req.temperature !== undefined) g["temperature"] = req.temperature;
  if (req.topP !== undefined) g["topP"] = req.topP;
  if (req.topK !== undefined) g["topK"] = req.topK;
  if (req.stop.length > 0) g["stopSequences"] = req.stop;
  if (req.seed !== undefined) g["seed"] = req.seed;
  if (req.presencePenalty !== undefined) g["presencePenalty"] = req.presencePenalty;
  if (req.frequencyPenalty !== undefined) g["frequencyPenalty"] = req.frequencyPenalty;
  const f = req.responseFormat;
  if (f?.type === ResponseFormat_Type.TYPE_JSON_OBJECT) g["responseMimeType"] = "application/json";
  if (f?.type === ResponseFormat_Type.TYPE_JSON_SCHEMA) {
    g["responseMimeType"] = "application/json";
    if (f.schema) g["responseSchema"] = toGeminiSchema(f.schema);
  }
  const thinking = thinkingConfig(model, req);
  if (thinking) g["thinkingConfig"] = thinking;
  return g;
}

/**
 * Builds the body of Gemini's `:streamGenerateContent` / `:generateContent`
 * (the same for AI Studio and Vertex AI): `contents`, `systemInstruction`,
 * `tools[].functionDeclarations` (parameters converted to Gemini's schema
 * subset, see gemini-schema.ts), `toolConfig`, `generationConfig`. A legacy
 * prompt becomes one user turn. Fields with no Gemini counterpart (`user`,
 * `metadata`, `service_tier`, `parallel_tool_calls`) are not sent, since
 * Gemini rejects unknown fields. Throws `InvalidArgument` naming the field
 * for content Gemini cannot take.
 */
export function geminiBody(model: string, req: GenerateRequest): Obj {
  const { system, contents } =
    req.messages.length > 0 ? geminiContents(req.messages, model) : { system: "", contents: [{ role: "user" as const, parts: [{ text: req.prompt }] }] };
  const body: Obj = { contents };
  if (system) body["systemInstruction"] = { parts: [{ text: system }] };
  if (req.tools.length > 0) {
    body["tools"] = [
      {
        functionDeclarations: req.tools.map((t) => {
          const parameters = toGeminiParameters(t.parameters);
          return { name: t.name, ...(t.description ? { description: t.description } : {}), ...(parameters ? { parameters } : {}) };
        }),
      },
    ];
    const tc = toolConfig(req);
    if (tc) body["toolConfig"] = tc;
  }
  const g = generationConfig(model, req);
  if (Object.keys(g).length > 0) body["generationConfig"] = g;
  return body;
}
