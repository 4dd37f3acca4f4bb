import { channel } from "node:diagnostics_channel";
import { AudioEncoding } from "../../gen/spillway/v1/chunk.js";
import type { SynthesizeRequest } from "../../gen/spillway/v1/request.js";
import { Code } from "../../engine/code.js";
import { invalidArgument, SpillwayError } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { lastLine, runThrough } from "../../audio/child-process.js";
import { DEFAULT_OUTPUT_RATE, pcmSeconds, toBytes } from "../../audio/pcm.js";
import { Resampler } from "../../audio/resample.js";
import { WavStreamParser } from "../../audio/wav.js";
import { countTokens } from "./tokens.js";
import { splitSegments } from "./tts-segments.js";
import { espeakRate, espeakVoice } from "./tts-voices.js";

/** What {@link TTS_SEGMENT_CHANNEL} publishes when synthesis of a segment starts. */
export interface TtsSegmentEvent {
  readonly streamId: string;
  /** Index of the segment, from 0. */
  readonly index: number;
  /** Number of segments of the input. */
  readonly count: number;
}

/**
 * A `node:diagnostics_channel` on which the local speech engine announces
 * each segment it starts synthesizing (a {@link TtsSegmentEvent}); free when
 * nobody subscribes. Tests and tracing use it to see synthesis progress.
 */
export const TTS_SEGMENT_CHANNEL = "spillway:local-tts:segment";
const segmentChannel = channel(TTS_SEGMENT_CHANNEL);

/** Longest input accepted, in characters (OpenAI's limit). */
export const MAX_SPEECH_INPUT = 4096;

/**
 * `local/tts`: speech with espeak-ng. The input is split into sentences
 * (see splitSegments), synthesized one after the other by an espeak-ng
 * child process each, and streamed as PCM s16le mono at the requested rate
 * (24 kHz by default) as espeak writes it, so the first audio leaves long
 * before the last sentence is synthesized. The next sentence starts only
 * when the consumer has taken the audio of the previous one (backpressure),
 * and aborting the call kills the running child.
 */
export async function* espeakSynthesize(
  command: string,
  req: SynthesizeRequest,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  if (!req.input.trim()) throw invalidArgument("'input' must not be empty.", "input");
  if (req.input.length > MAX_SPEECH_INPUT) {
    throw invalidArgument(`'input' is ${req.input.length} characters long; the limit is ${MAX_SPEECH_INPUT}.`, "input");
  }
  const voice = espeakVoice(req.voice || "alloy");
  const rate = String(espeakRate(req.speed));
  const outRate = req.sampleRate || DEFAULT_OUTPUT_RATE;
  const segments = splitSegments(req.input);
  let resampler: Resampler | undefined;
  let bytes = 0;
  for (let index = 0; index < segments.length; index++) {
    if (segmentChannel.hasSubscribers) {
      segmentChannel.publish({ streamId: ctx.streamId, index, count: segments.length } satisfies TtsSegmentEvent);
    }
    const wav = new WavStreamParser();
    const out = runThrough({
      command,
      args: ["--stdout", "-v", voice, "-s", rate],
      input: [Buffer.from(`${segments[index]!}\n`, "utf8")],
      signal: ctx.signal,
      onFailure: (stderr, code) => new SpillwayError(Code.Internal, `espeak-ng failed (exit ${code}): ${lastLine(stderr)}`),
    });
    for await (const chunk of out) {
      const samples = wav.push(chunk);
      if (samples.length === 0) continue;
      const from = wav.format!.sampleRate;
      if (resampler?.inRate !== from) resampler = new Resampler(from, outRate);
      const data = toBytes(resampler.push(samples));
      if (data.length === 0) continue;
      bytes += data.length;
      yield {
        $case: "audio",
        value: { data, encoding: AudioEncoding.AUDIO_ENCODING_PCM_S16LE, sampleRate: outRate, channels: 1 },
      };
    }
    if (!wav.format) throw new SpillwayError(Code.Internal, "espeak-ng produced no audio");
  }
  yield usagePayload({ inputTokens: countTokens(req.input), outputAudioSeconds: pcmSeconds(bytes, outRate) });
  yield finishPayload(FinishReason.REASON_STOP);
}
