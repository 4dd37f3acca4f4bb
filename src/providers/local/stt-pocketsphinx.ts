import { TranscriptDelta_Kind } from "../../gen/spillway/v1/chunk.js";
import type { TranscribeConfig } from "../../gen/spillway/v1/request.js";
import { invalidArgument } from "../../engine/errors.js";
import { finishPayload, FinishReason, usagePayload, type ChunkPayload } from "../../engine/payload.js";
import type { ProviderContext } from "../../engine/provider.js";
import { FIFO_ARG, runThrough } from "../../audio/child-process.js";
import { decodeToPcm } from "../../audio/decode.js";
import { pcmSeconds, toBytes } from "../../audio/pcm.js";
import { countTokens } from "./tokens.js";
import { UtteranceParser, type Utterance } from "./stt-output.js";

/** The sample rate the pocketsphinx US English model expects. */
const STT_RATE = 16_000;

/**
 * Silence frames (10 ms each) that end an utterance. pocketsphinx's default
 * (50) waits half a second; 15 ends utterances at sentence pauses, so text
 * streams out sentence by sentence.
 */
const VAD_POSTSPEECH = "15";

/**
 * `local/stt`: transcription with pocketsphinx (US English). The audio is
 * decoded as it arrives (WAV, MP3, raw PCM in process; other formats through
 * ffmpeg) to 16 kHz PCM and piped into `pocketsphinx_continuous`, which
 * prints each utterance as soon as it ends; each word becomes a `DELTA`,
 * and each utterance a `FINAL` with its span (the segments of
 * `verbose_json`). Bad audio fails with a 400 before any text; aborting the
 * call kills the recognizer. Each piece of audio consumed counts as life
 * for the engine's timeouts, so only a stream that stops sending audio
 * times out.
 */
export async function* pocketsphinxTranscribe(
  command: string,
  config: TranscribeConfig,
  audio: AsyncIterable<Uint8Array>,
  ctx: ProviderContext,
): AsyncGenerator<ChunkPayload> {
  if (config.language && !/^en(\b|[-_])/i.test(config.language)) {
    throw invalidArgument(`local/stt transcribes English only; language '${config.language}' is not supported.`, "language");
  }
  let samples = 0;
  const pcm = decodeToPcm(audio, {
    encoding: config.encoding,
    inputRate: config.sampleRate,
    targetRate: STT_RATE,
    signal: ctx.signal,
  });
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const s of pcm) {
      // Audio the recognizer takes is progress: a live stream with a long silence is not a stalled call.
      ctx.alive?.();
      samples += s.length;
      if (s.length > 0) yield toBytes(s);
    }
  }
  const out = runThrough({
    command,
    // pocketsphinx 5prealpha fopen()s its input, and Node's stdin pipes are sockets it cannot open: a FIFO.
    args: ["-infile", FIFO_ARG, "-time", "yes", "-vad_postspeech", VAD_POSTSPEECH],
    input: counted(),
    inputFifo: true,
    signal: ctx.signal,
  });
  const parser = new UtteranceParser();
  const decoder = new TextDecoder();
  let words = 0;
  for await (const chunk of out) {
    for (const u of parser.push(decoder.decode(chunk, { stream: true }))) {
      yield* utterancePayloads(u, words === 0);
      words += u.text.split(" ").length;
    }
  }
  for (const u of parser.finish()) {
    yield* utterancePayloads(u, words === 0);
    words += u.text.split(" ").length;
  }
  yield usagePayload({
    inputTokens: countTokens(config.prompt),
    outputTokens: words,
    inputAudioSeconds: pcmSeconds(samples * 2, STT_RATE),
  });
  yield finishPayload(FinishReason.REASON_STOP);
}

/** One `DELTA` per word (a space before all but the very first), then the utterance as a `FINAL`. */
function* utterancePayloads(u: Utterance, first: boolean): Generator<ChunkPayload> {
  const words = u.words.length > 0 ? u.words : [{ word: u.text, start: u.start, end: u.end }];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    yield {
      $case: "transcript",
      value: {
        text: first && i === 0 ? w.word : ` ${w.word}`,
        kind: TranscriptDelta_Kind.KIND_DELTA,
        startSeconds: w.start,
        endSeconds: w.end,
      },
    };
  }
  yield {
    $case: "transcript",
    value: { text: u.text, kind: TranscriptDelta_Kind.KIND_FINAL, startSeconds: u.start, endSeconds: u.end },
  };
}
