import type { ContentPart, GenerateRequest, Message } from "../../gen/spillway/v1/request.js";
import { ResponseFormat_Type } from "../../gen/spillway/v1/request.js";
import { isObj, str } from "./json.js";

/**
 * TRANSITIONAL (remove once every door fills the typed fields): upgrades a
 * request built the old way — non-text content as OpenAI chat JSON in the
 * deprecated `Message.parts`, OpenAI chat fields flat in `extra` — into the
 * typed form the providers read: `parts` become `contents`, the flat
 * `response_format` / `reasoning_effort` / `user` / `metadata` / `seed` /
 * `service_tier` / penalties become their typed fields, and what is left of
 * the flat `extra` moves under `extra.openai`. A request that is already
 * typed is returned as it is.
 */
export function upgradeLegacyRequest(req: GenerateRequest): GenerateRequest {
  const extra: Record<string, unknown> = req.extra ?? {};
  const flat = Object.keys(extra).filter((k) => !FAMILIES.has(k));
  const legacyParts = req.messages.some((m) => m.contents.length === 0 && m.parts.length > 0);
  if (flat.length === 0 && !legacyParts) return req;
  const out: GenerateRequest = { ...req, messages: legacyParts ? req.messages.map(upgradeMessage) : req.messages };
  if (flat.length === 0) return out;
  const openai: Record<string, unknown> = isObj(extra["openai"]) ? { ...extra["openai"] } : {};
  for (const k of flat) openai[k] = extra[k];
  const take = (k: string): unknown => {
    const v = openai[k];
    delete openai[k];
    return v;
  };
  const rf = take("response_format");
  if (isObj(rf) && !out.responseFormat) {
    const js = isObj(rf["json_schema"]) ? rf["json_schema"] : {};
    const type = rf["type"] === "json_schema" ? ResponseFormat_Type.TYPE_JSON_SCHEMA : rf["type"] === "json_object" ? ResponseFormat_Type.TYPE_JSON_OBJECT : ResponseFormat_Type.TYPE_TEXT;
    out.responseFormat = {
      type,
      name: str(js["name"]),
      description: str(js["description"]),
      schema: isObj(js["schema"]) ? js["schema"] : undefined,
      strict: js["strict"] === true,
    };
  }
  const effort = take("reasoning_effort");
  if (typeof effort === "string" && !out.reasoning) out.reasoning = { effort, budgetTokens: 0, summary: "", disabled: false };
  const user = take("user");
  if (typeof user === "string" && !out.user) out.user = user;
  const metadata = take("metadata");
  if (isObj(metadata) && Object.keys(out.metadata).length === 0) {
    out.metadata = Object.fromEntries(Object.entries(metadata).filter((e): e is [string, string] => typeof e[1] === "string"));
  }
  const seed = take("seed");
  if (typeof seed === "number" && out.seed === undefined) out.seed = seed;
  const tier = take("service_tier");
  if (typeof tier === "string" && !out.serviceTier) out.serviceTier = tier;
  const presence = take("presence_penalty");
  if (typeof presence === "number" && out.presencePenalty === undefined) out.presencePenalty = presence;
  const frequency = take("frequency_penalty");
  if (typeof frequency === "number" && out.frequencyPenalty === undefined) out.frequencyPenalty = frequency;
  const rest: Record<string, unknown> = { openai };
  for (const k of Object.keys(extra)) if (FAMILIES.has(k) && k !== "openai") rest[k] = extra[k];
  out.extra = rest;
  return out;
}

/** The wire families `extra` is keyed by. */
const FAMILIES = new Set(["openai", "anthropic", "gemini", "bedrock"]);

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

function upgradeMessage(m: Message): Message {
  if (m.contents.length > 0 || m.parts.length === 0) return m;
  const contents = m.parts.map((p: Record<string, unknown>): ContentPart => {
    switch (p["type"]) {
      case "text":
        return { part: { $case: "text", value: str(p["text"]) } };
      case "refusal":
        return { part: { $case: "refusal", value: str(p["refusal"]) } };
      case "image_url": {
        const image = p["image_url"];
        const url = typeof image === "string" ? image : isObj(image) ? str(image["url"]) : "";
        const detail = isObj(image) ? str(image["detail"]) : "";
        return { part: { $case: "image", value: { url, data: Buffer.alloc(0), mediaType: "", detail } } };
      }
      case "input_audio": {
        const a = isObj(p["input_audio"]) ? p["input_audio"] : {};
        return { part: { $case: "inputAudio", value: { data: Buffer.from(str(a["data"]), "base64"), format: str(a["format"]) } } };
      }
      case "file": {
        const f = isObj(p["file"]) ? p["file"] : {};
        const m2 = DATA_URL.exec(str(f["file_data"]));
        return {
          part: {
            $case: "file",
            value: {
              url: "",
              data: m2 ? Buffer.from(m2[2]!, "base64") : Buffer.from(str(f["file_data"]), "base64"),
              mediaType: m2 ? m2[1]! : "",
              filename: str(f["filename"]),
              fileId: str(f["file_id"]),
              text: "",
              title: "",
              context: "",
              citations: false,
            },
          },
        };
      }
      default:
        // Unknown to the typed form: kept as text so nothing breaks; the old path sent it as is.
        return { part: { $case: "text", value: "" } };
    }
  });
  return { ...m, contents };
}
