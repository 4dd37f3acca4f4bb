/**
 * Speech from ElevenLabs' streaming endpoint (`POST
 * /v1/text-to-speech/{voice_id}/stream?output_format=…`): the whole text in
 * one request, the audio streamed back as it is made and passed on as it
 * arrives (see formats.ts for what the chunks are). A refusal is mapped by
 * errors.ts before the first chunk; aborting the call aborts the request.
 */
import type { SynthesizeRequest } from "../../gen/spillway/v1/request.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { errorBodyText, streamReadError } from "../shared/upstream-errors.js";
import { upstreamRequest } from "../shared/upstream-http.js";
import { elevenLabsError } from "./errors.js";
import { AudioChunker, outputFormatOf } from "./formats.js";
import type { ElevenLabsUpstream } from "./upstream.js";

/** The `voice_settings` of one request: the provider's, with the request's speed when it is not 1. */
export function voiceSettingsOf(up: ElevenLabsUpstream, req: SynthesizeRequest): Record<string, unknown> {
  const s: Record<string, unknown> = { ...up.voiceSettings };
  if (req.speed && req.speed !== 1) s["speed"] = req.speed;
  return s;
}

/** Streams speech for `req.input`. */
export async function* elevenLabsSpeech(up: ElevenLabsUpstream, model: string, req: SynthesizeRequest, ctx: ProviderContext): AsyncGenerator<ChunkPayload> {
  const voice = up.voiceId(req.voice);
  const format = outputFormatOf(req);
  const body: Record<string, unknown> = { text: req.input, model_id: model };
  const settings = voiceSettingsOf(up, req);
  if (Object.keys(settings).length > 0) body["voice_settings"] = settings;
  const url = `${up.base}/v1/text-to-speech/${encodeURIComponent(voice)}/stream?output_format=${format.name}`;
  const res = await up.send(ctx, async (headers) => {
    const r = await upstreamRequest(up.name, url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", accept: "audio/*" },
      body: JSON.stringify(body),
      signal: ctx.signal,
    });
    if (!r.ok) {
      const text = await errorBodyText(r);
      throw elevenLabsError(up.name, r.status, text, r.headers.get("retry-after") ?? undefined);
    }
    return r;
  });
  const chunker = new AudioChunker(format);
  try {
    for await (const bytes of res.body) {
      const p = chunker.chunk(bytes);
      if (p) yield p;
    }
  } catch (e) {
    throw streamReadError(up.name, e, ctx.signal);
  }
  yield usagePayload({ inputTokens: 0, outputAudioSeconds: chunker.seconds });
  yield finishPayload(FinishReason.REASON_STOP);
}
