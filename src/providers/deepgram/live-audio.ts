/**
 * The audio of a live Deepgram stream: which `encoding` / `sample_rate` to
 * ask for, and the bytes to send. Raw PCM and G.711 go as they are (so
 * telephony audio reaches Deepgram as `mulaw` 8 kHz, never resampled); a
 * WAV stream (the realtime door's, or a gRPC client's) is unwrapped to
 * `linear16` at its own rate, because the query must name the rate before
 * the first frame and a streamed WAV's sizes are unknown. A compressed
 * container (no encoding declared) goes as it is, without `encoding`.
 */
import { AudioEncoding } from "../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { toBytes } from "../../audio/pcm.js";
import { WavStreamParser } from "../../audio/wav.js";

/** Encodings sent over the live WebSocket; everything else (files) goes to the REST API. */
export const LIVE_ENCODINGS: readonly AudioEncoding[] = [
  AudioEncoding.AUDIO_ENCODING_PCM_S16LE,
  AudioEncoding.AUDIO_ENCODING_WAV,
  AudioEncoding.AUDIO_ENCODING_PCMU,
  AudioEncoding.AUDIO_ENCODING_PCMA,
];

/** True for the encodings of {@link LIVE_ENCODINGS}. */
export function isLiveEncoding(e: AudioEncoding): boolean {
  return LIVE_ENCODINGS.includes(e);
}

/** A live stream's audio, ready to send. */
export interface LiveAudio {
  /** `encoding`, `sample_rate`, `channels` query parameters. */
  readonly params: Readonly<Record<string, string>>;
  /** Bytes per second of what is sent (for the audio's duration); 0 when unknown (a compressed container). */
  readonly bytesPerSecond: number;
  /** Audio already read from the source while finding the format (WAV header and what followed it). */
  readonly first: readonly Uint8Array[];
  /** Turns one later piece of the source into the bytes to send (possibly empty). */
  convert(piece: Uint8Array): Uint8Array;
}

/**
 * Reads as much of `audio` as it takes to know the format (nothing for PCM
 * and G.711, the header for WAV). Throws InvalidArgument naming
 * `sample_rate` for PCM without one, or the WAV problem.
 */
export async function openLiveAudio(config: TranscribeConfig, audio: AsyncIterator<Uint8Array>): Promise<LiveAudio> {
  const same = (piece: Uint8Array): Uint8Array => piece;
  switch (config.encoding) {
    case AudioEncoding.AUDIO_ENCODING_PCMU:
    case AudioEncoding.AUDIO_ENCODING_PCMA: {
      const rate = config.sampleRate || 8000;
      const encoding = config.encoding === AudioEncoding.AUDIO_ENCODING_PCMU ? "mulaw" : "alaw";
      return { params: { encoding, sample_rate: String(rate), channels: "1" }, bytesPerSecond: rate, first: [], convert: same };
    }
    case AudioEncoding.AUDIO_ENCODING_PCM_S16LE: {
      if (!config.sampleRate) throw invalidArgument("sample_rate is required for 16-bit PCM audio (e.g. 16000)", "sample_rate");
      const rate = config.sampleRate;
      return { params: { encoding: "linear16", sample_rate: String(rate), channels: "1" }, bytesPerSecond: rate * 2, first: [], convert: same };
    }
    case AudioEncoding.AUDIO_ENCODING_UNSPECIFIED:
      // A container (MP3, Ogg, WebM, FLAC, AAC: see live-file.ts): sent as it is, Deepgram reads its format.
      return { params: {}, bytesPerSecond: 0, first: [], convert: same };
    default: {
      const parser = new WavStreamParser();
      const first: Uint8Array[] = [];
      while (!parser.format) {
        const r = await audio.next();
        if (r.done) {
          parser.end();
          break;
        }
        const s = parser.push(r.value);
        if (s.length > 0) first.push(toBytes(s));
      }
      const rate = parser.format!.sampleRate;
      return {
        params: { encoding: "linear16", sample_rate: String(rate), channels: "1" },
        bytesPerSecond: rate * 2,
        first,
        convert: (piece) => toBytes(parser.push(piece)),
      };
    }
  }
}
