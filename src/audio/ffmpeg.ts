import { invalidArgument } from "../engine/errors.js";
import { audioInputError } from "./audio-error.js";
import { lastLine, runThrough } from "./child-process.js";
import { findExecutable } from "./which.js";

/** The ffmpeg executable, or undefined when ffmpeg is not installed. */
export function ffmpegPath(): string | undefined {
  return findExecutable("ffmpeg");
}

const QUIET = ["-hide_banner", "-nostdin", "-loglevel", "error"] as const;

/**
 * Decodes any audio ffmpeg understands (M4A, OGG, WebM, FLAC, AAC, …) from
 * `input` to s16le mono PCM at `sampleRate`, as it arrives. The input is read
 * from a pipe, so formats that need seeking (an MP4 whose index is at the
 * end) cannot be read this way (see decodeToPcm). An undecodable file is a
 * 400 starting with `what` and quoting ffmpeg's complaint.
 */
export function ffmpegDecode(
  input: AsyncIterable<Uint8Array>,
  sampleRate: number,
  signal: AbortSignal,
  what = "The audio file could not be decoded",
): AsyncGenerator<Buffer> {
  const command = ffmpegPath();
  if (!command) throw audioInputError("This audio format needs ffmpeg, which is not installed (WAV and MP3 work without it).");
  return runThrough({
    command,
    args: [...QUIET, "-i", "pipe:0", "-vn", "-ac", "1", "-ar", String(sampleRate), "-f", "s16le", "pipe:1"],
    input,
    signal,
    onFailure: (stderr) => audioInputError(`${what}: ${lastLine(stderr) || "ffmpeg failed"}.`),
  });
}

/** ffmpeg output settings per container format Spillway encodes through it. */
const ENCODE_ARGS: Readonly<Record<FfmpegOutputFormat, readonly string[]>> = {
  opus: ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
  aac: ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
  flac: ["-c:a", "flac", "-f", "flac"],
};

/** Formats encoded with ffmpeg. */
export type FfmpegOutputFormat = "opus" | "aac" | "flac";

/**
 * Encodes s16le mono PCM at `sampleRate` to `format` with ffmpeg, yielding
 * the encoded bytes as ffmpeg writes them (flushed per packet). Without
 * ffmpeg it throws a 400 naming the formats available; a failure is an
 * `Internal` error quoting ffmpeg.
 */
export function ffmpegEncode(
  pcm: AsyncIterable<Uint8Array>,
  sampleRate: number,
  format: FfmpegOutputFormat,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const command = ffmpegPath();
  if (!command) {
    throw invalidArgument(
      `response_format '${format}' needs ffmpeg, which is not installed on this server; available formats: mp3, wav, pcm.`,
      "response_format",
    );
  }
  return runThrough({
    command,
    args: [...QUIET, "-f", "s16le", "-ar", String(sampleRate), "-ac", "1", "-i", "pipe:0", ...ENCODE_ARGS[format], "-flush_packets", "1", "pipe:1"],
    input: pcm,
    signal,
  });
}
