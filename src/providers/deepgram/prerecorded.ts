/**
 * Pre-recorded recognition with Deepgram's REST API (`POST /v1/listen`):
 * the file goes up as the request body, streamed as it arrives, with its
 * own media type (Deepgram detects the container); the answer is one JSON
 * document. Each utterance (`utterances=true`) becomes a `FINAL` with its
 * span; without utterances, the whole transcript is one `FINAL`. The
 * duration Deepgram reports is the usage.
 */
import { AudioEncoding, TranscriptDelta_Kind } from "../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { SpillwayError } from "../../engine/errors.js";
import { amount, isObj, obj, str } from "../shared/json.js";
import { errorBodyText } from "../shared/upstream-errors.js";
import { upstreamRequest } from "../shared/upstream-http.js";
import { deepgramError, deepgramMalformed } from "./errors.js";
import type { DeepgramUpstream } from "./upstream.js";

const MEDIA_TYPES: Partial<Record<AudioEncoding, string>> = {
  [AudioEncoding.AUDIO_ENCODING_WAV]: "audio/wav",
  [AudioEncoding.AUDIO_ENCODING_MP3]: "audio/mpeg",
  [AudioEncoding.AUDIO_ENCODING_OPUS]: "audio/ogg",
  [AudioEncoding.AUDIO_ENCODING_AAC]: "audio/aac",
  [AudioEncoding.AUDIO_ENCODING_FLAC]: "audio/flac",
};

/** Transcribes a whole file (any container Deepgram reads) with the REST API. */
export async function* deepgramPrerecorded(
  up: DeepgramUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  const s = up.settings;
  const q = new URLSearchParams({ model, smart_format: String(s.smartFormat), punctuate: String(s.punctuate), utterances: "true" });
  const language = config.language || s.language;
  if (language) q.set("language", language);
  const mediaType = config.mimeType || MEDIA_TYPES[config.encoding] || "application/octet-stream";
  const res = await up.send(ctx, { "content-type": mediaType }, async (headers) => {
    const r = await upstreamRequest(up.name, `${up.base}/v1/listen?${q.toString()}`, { method: "POST", headers, body: audio, signal: ctx.signal });
    if (!r.ok) {
      const body = await errorBodyText(r);
      throw deepgramError(up.name, r.status, body, r.headers.get("retry-after") ?? undefined);
    }
    return r;
  });
  let j: unknown;
  try {
    j = await res.json();
  } catch (e) {
    throw e instanceof SpillwayError ? e : deepgramMalformed(up.name, "a transcription that is not JSON");
  }
  if (!isObj(j) || !isObj(j["results"])) throw deepgramMalformed(up.name, "a transcription without results");
  const results = j["results"];
  const duration = amount(obj(j["metadata"])["duration"]);
  const utterances = Array.isArray(results["utterances"]) ? results["utterances"].filter(isObj) : [];
  if (utterances.length > 0) {
    for (const u of utterances) {
      const text = str(u["transcript"]).trim();
      if (text) yield transcript(text, amount(u["start"]), amount(u["end"]));
    }
  } else {
    const channels = Array.isArray(results["channels"]) ? results["channels"] : [];
    const alternatives = obj(channels[0])["alternatives"];
    const text = Array.isArray(alternatives) ? str(obj(alternatives[0])["transcript"]).trim() : "";
    if (text) yield transcript(text, 0, duration);
  }
  yield usagePayload({ inputAudioSeconds: duration });
  yield finishPayload(FinishReason.REASON_STOP);
}

function transcript(text: string, start: number, end: number): ChunkPayload {
  return { $case: "transcript", value: { text, kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: start, endSeconds: end } };
}
