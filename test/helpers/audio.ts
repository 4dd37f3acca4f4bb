/** Audio helpers for tests: decoding what Spillway produced with independent tools. */
import { execFile } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MPEGDecoder } from "mpg123-decoder";

const run = promisify(execFile);

/** True when ffmpeg (and ffprobe) are installed. */
export const hasFfmpeg: boolean = await run("ffprobe", ["-version"]).then(
  () => true,
  () => false,
);

/** Decodes a whole MP3 with mpg123-decoder: its sample rate and duration in seconds. */
export async function mp3Info(bytes: Uint8Array): Promise<{ sampleRate: number; seconds: number; samples: number }> {
  const d = new MPEGDecoder();
  await d.ready;
  const r = d.decode(bytes);
  d.free();
  return { sampleRate: r.sampleRate, seconds: r.samplesDecoded / r.sampleRate, samples: r.samplesDecoded };
}

/** What ffprobe says about an audio file: codec, sample rate, duration (decoding it to the end). */
export async function ffprobe(bytes: Uint8Array): Promise<{ codec: string; sampleRate: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-test-"));
  const file = join(dir, "audio");
  writeFileSync(file, bytes);
  const { stdout } = await run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,sample_rate", "-of", "json", file]);
  const s = JSON.parse(stdout).streams[0];
  // Decode to the end: a streamed WAV's header cannot tell the duration.
  const { stderr } = await run("ffmpeg", ["-hide_banner", "-nostats", "-i", file, "-f", "null", "-"]);
  const m = /time=(\d+):(\d+):(\d+\.\d+)/.exec(stderr.split("time=").length > 1 ? stderr.slice(stderr.lastIndexOf("time=")) : "");
  const seconds = m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
  return { codec: s.codec_name, sampleRate: Number(s.sample_rate), seconds };
}

/** Converts audio with the ffmpeg CLI (e.g. WAV to M4A), for upload tests. */
export async function ffmpegConvert(bytes: Uint8Array, ext: string): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-test-"));
  const input = join(dir, "in.wav");
  const output = join(dir, `out.${ext}`);
  writeFileSync(input, bytes);
  await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", input, output]);
  const { readFileSync } = await import("node:fs");
  return readFileSync(output);
}

/**
 * A directory holding symlinks to only the given executables (from the
 * current PATH), to run the gateway as if nothing else were installed.
 */
export async function pathWith(executables: readonly string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-path-"));
  for (const name of executables) {
    const { stdout } = await run("sh", ["-c", `command -v ${name}`]);
    symlinkSync(stdout.trim(), join(dir, name));
  }
  return dir;
}

/** Runs `fn` with PATH set to `path`, restoring it after. */
export async function withPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env["PATH"];
  process.env["PATH"] = path;
  try {
    return await fn();
  } finally {
    process.env["PATH"] = saved;
  }
}
