/**
 * How a response's speech is made and played: which engine entry point
 * (speech from streamed text when the profile's speech model offers it,
 * else sentence by sentence), which encoding to ask for (G.711 straight
 * from the provider when the session plays `audio/pcmu` / `audio/pcma` and
 * the provider makes it, so telephony audio is never resampled or
 * re-encoded; else PCM at the session rate), and engine audio → bytes of
 * the session's output format.
 */
import { AudioEncoding, type AudioChunk } from "../../gen/spillway/v1/chunk.js";
import { Code } from "../../engine/code.js";
import { SpillwayError } from "../../engine/errors.js";
import type { StreamEngine } from "../../engine/stream-engine.js";
import { toBytes } from "../../audio/pcm.js";
import { OutputEncoder, SESSION_RATE, type RealtimeAudioFormat } from "./audio/formats.js";
import { decodeAlaw, decodeUlaw } from "./audio/g711.js";

/** How a response asks for its speech. */
export interface SpeechPlan {
  /** Speak the text as it is written (`engine.synthesizeStream`), not sentence by sentence. */
  readonly streamed: boolean;
  /** The encoding and rate to ask the speech model for. */
  readonly encoding: AudioEncoding;
  readonly sampleRate: number;
}

const G711: Readonly<Partial<Record<RealtimeAudioFormat, AudioEncoding>>> = {
  "audio/pcmu": AudioEncoding.AUDIO_ENCODING_PCMU,
  "audio/pcma": AudioEncoding.AUDIO_ENCODING_PCMA,
};

/** The speech plan for `ttsModel` playing `format`; a model that does not resolve gets the plain plan (its call fails later, as an error event). */
export function speechPlan(engine: StreamEngine, ttsModel: string, format: RealtimeAudioFormat): SpeechPlan {
  const plain: SpeechPlan = { streamed: false, encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: SESSION_RATE };
  let provider;
  try {
    provider = engine.router.resolve(ttsModel).provider;
  } catch {
    return plain;
  }
  const g711 = G711[format];
  const native = g711 !== undefined && (provider.nativeSpeechEncodings ?? []).includes(g711);
  return {
    streamed: provider.synthesizeStream !== undefined,
    encoding: native ? g711 : plain.encoding,
    sampleRate: native ? 8000 : plain.sampleRate,
  };
}

/** Engine audio → bytes of the session's output format. One per response (resampling state). */
export class SpeechOutput {
  private readonly encoder: OutputEncoder;
  /** Largest audio delta (bytes before base64): 200 ms of the format. */
  readonly maxDeltaBytes: number;

  constructor(readonly format: RealtimeAudioFormat) {
    this.encoder = new OutputEncoder(format);
    this.maxDeltaBytes = format === "audio/pcm" ? 9600 : 1600;
  }

  /** The bytes to send for one audio chunk. Throws for audio the door cannot play (mp3 …). */
  encode(a: AudioChunk): Buffer {
    const data = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    switch (a.encoding) {
      case AudioEncoding.AUDIO_ENCODING_PCMU:
      case AudioEncoding.AUDIO_ENCODING_PCMA:
        if (G711[this.format] === a.encoding) return data;
        return this.encoder.encode(toBytes(a.encoding === AudioEncoding.AUDIO_ENCODING_PCMU ? decodeUlaw(data) : decodeAlaw(data)), 8000);
      case AudioEncoding.AUDIO_ENCODING_PCM_S16LE:
      case AudioEncoding.AUDIO_ENCODING_UNSPECIFIED:
        return this.encoder.encode(data, a.sampleRate || SESSION_RATE);
      default:
        throw new SpillwayError(Code.Unimplemented, `the speech model sent ${AudioEncoding[a.encoding]} audio, which a realtime session cannot play`);
    }
  }

  /** Playback time (ms) of `bytes` of output. */
  durationMs(bytes: number): number {
    return this.encoder.durationMs(bytes);
  }
}
