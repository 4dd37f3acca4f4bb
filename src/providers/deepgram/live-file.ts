/**
 * An uploaded file for Deepgram (no encoding declared). Asked for `live`
 * results (an upload that streams its transcript while it arrives), the
 * file goes over the live WebSocket as it arrives: a WAV unwrapped to
 * `linear16` in process (its header names the rate), MP3, Ogg, WebM, FLAC
 * and AAC sent as they are, without `encoding`, for Deepgram to read the
 * container itself (no decoding here). MP4/M4A (whose index may sit at
 * the end, so it cannot be read as a stream), unrecognized bytes, and
 * files not asked for live go to the REST API, which reads any container
 * Deepgram knows and answers once.
 */
import { AudioEncoding } from "../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import type { ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { replay } from "../../audio/replay.js";
import { SNIFF_BYTES, sniffAudio, type SniffedFormat } from "../../audio/sniff.js";
import { deepgramLive } from "./live.js";
import { deepgramPrerecorded } from "./prerecorded.js";
import type { DeepgramUpstream } from "./upstream.js";

/** Containers sent over the live socket as they are. */
const STREAMABLE: ReadonlySet<SniffedFormat> = new Set(["mp3", "ogg", "webm", "flac", "aac"]);

/** Transcribes a file: live as it arrives when `config.live` and the container allows, else with the REST API. */
export async function* deepgramFile(
  up: DeepgramUpstream,
  model: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  if (!config.live) {
    yield* deepgramPrerecorded(up, model, config, audio, ctx);
    return;
  }
  const it = audio[Symbol.asyncIterator]();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < SNIFF_BYTES) {
    const r = await it.next();
    if (r.done) break;
    parts.push(r.value);
    size += r.value.length;
  }
  const head = Buffer.concat(parts);
  const format = sniffAudio(head);
  const all = replay<Uint8Array>(head, it);
  if (format === "wav") yield* deepgramLive(up, model, { ...config, encoding: AudioEncoding.AUDIO_ENCODING_WAV }, all, ctx);
  else if (STREAMABLE.has(format)) yield* deepgramLive(up, model, config, all, ctx);
  else yield* deepgramPrerecorded(up, model, config, all, ctx);
}
