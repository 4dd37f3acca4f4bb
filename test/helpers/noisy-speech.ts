/**
 * Recorded-style test audio for turn detection, made at test time: speech
 * from espeak-ng placed in a track of background noise, with a burst of
 * loud noise (a fan, a passing car: as loud as speech, but not speech)
 * before it. Mixed with sox when it is installed, else with ffmpeg (the
 * same recipe). Returns 24 kHz pcm16 and where the speech really is.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { findExecutable } from "../../src/audio/which.js";

const run = promisify(execFile);

/** The mixed audio and the true speech edges (ms from its start). */
export interface NoisySpeech {
  /** 24 kHz pcm16 mono. */
  readonly pcm: Buffer;
  /** First and last ms where the speech track is above -45 dBFS. */
  readonly speechStartMs: number;
  readonly speechEndMs: number;
  /** Where the noise burst is (ms). */
  readonly burstStartMs: number;
  readonly burstEndMs: number;
  /** `sox` or `ffmpeg`: what mixed it. */
  readonly mixer: string;
}

/** Layout of the track (ms). */
export interface NoisySpeechLayout {
  readonly text: string;
  readonly burstAtMs: number;
  readonly burstMs: number;
  /** Amplitude (0–1) of the white-noise burst. */
  readonly burstAmplitude: number;
  /** Amplitude (0–1) of the pink background noise. */
  readonly backgroundAmplitude: number;
  readonly speechAtMs: number;
  readonly tailMs: number;
}

const RATE = 24_000;

/** The speech edges of clean pcm16: first and last 10 ms frame above -45 dBFS. */
export function speechEdges(pcm: Buffer): { startMs: number; endMs: number } {
  const frame = RATE / 100;
  const n = Math.floor(pcm.length / 2 / frame);
  let first = -1;
  let last = -1;
  for (let f = 0; f < n; f++) {
    let sum = 0;
    for (let i = 0; i < frame; i++) {
      const s = pcm.readInt16LE((f * frame + i) * 2);
      sum += s * s;
    }
    const db = 20 * Math.log10(Math.sqrt(sum / frame) / 32768 + 1e-12);
    if (db > -45) {
      if (first < 0) first = f;
      last = f;
    }
  }
  return { startMs: first * 10, endMs: (last + 1) * 10 };
}

/** Makes the track; needs espeak-ng and sox or ffmpeg on PATH. */
export async function noisySpeech(layout: NoisySpeechLayout): Promise<NoisySpeech> {
  const dir = mkdtempSync(join(tmpdir(), "spillway-vad-"));
  try {
    const spoken = join(dir, "speech.wav");
    await run("espeak-ng", ["-w", spoken, layout.text]);
    const out = join(dir, "mix.raw");
    const cleanRaw = join(dir, "clean.raw");
    const speechS = (layout.speechAtMs / 1000).toFixed(3);
    const mixer = findExecutable("sox") ? "sox" : "ffmpeg";
    if (mixer === "sox") {
      // -R: repeatable (fixed seed for the noise and the dither), so every run hears the same track.
      const sox = (args: string[]): Promise<unknown> => run("sox", ["-R", ...args]);
      const fmt = ["-r", String(RATE), "-c", "1", "-b", "16", "-e", "signed-integer"];
      await sox([spoken, ...fmt, join(dir, "sp.wav"), "pad", speechS, (layout.tailMs / 1000).toFixed(3)]);
      await sox([spoken, ...fmt, "-t", "raw", cleanRaw]);
      const sp = readFileSync(join(dir, "sp.wav"));
      const totalS = ((sp.length - 44) / 2 / RATE).toFixed(3);
      await sox(["-n", ...fmt, join(dir, "bg.wav"), "synth", totalS, "pinknoise", "vol", String(layout.backgroundAmplitude)]);
      await sox([
        "-n", ...fmt, join(dir, "burst.wav"), "synth", (layout.burstMs / 1000).toFixed(3), "whitenoise", "vol", String(layout.burstAmplitude),
        "pad", (layout.burstAtMs / 1000).toFixed(3),
      ]);
      await sox(["-m", "-v", "1", join(dir, "bg.wav"), "-v", "1", join(dir, "burst.wav"), "-v", "1", join(dir, "sp.wav"), ...fmt, "-t", "raw", out]);
    } else {
      await run("ffmpeg", ["-v", "error", "-i", spoken, "-ar", String(RATE), "-ac", "1", "-f", "s16le", cleanRaw]);
      const cleanMs = (readFileSync(cleanRaw).length / 2 / RATE) * 1000;
      const totalS = ((layout.speechAtMs + cleanMs + layout.tailMs) / 1000).toFixed(3);
      await run("ffmpeg", [
        "-v", "error",
        "-f", "lavfi", "-i", `anoisesrc=color=pink:amplitude=${layout.backgroundAmplitude}:duration=${totalS}:sample_rate=${RATE}:seed=7`,
        "-f", "lavfi", "-i", `anoisesrc=color=white:amplitude=${layout.burstAmplitude}:duration=${layout.burstMs / 1000}:sample_rate=${RATE}:seed=11`,
        "-i", spoken,
        "-filter_complex",
        `[1]adelay=${layout.burstAtMs}[b];[2]aresample=${RATE},adelay=${layout.speechAtMs}[s];[0][b][s]amix=inputs=3:normalize=0:duration=first`,
        "-ac", "1", "-ar", String(RATE), "-f", "s16le", out,
      ]);
    }
    const edges = speechEdges(readFileSync(cleanRaw));
    return {
      pcm: readFileSync(out),
      speechStartMs: layout.speechAtMs + edges.startMs,
      speechEndMs: layout.speechAtMs + edges.endMs,
      burstStartMs: layout.burstAtMs,
      burstEndMs: layout.burstAtMs + layout.burstMs,
      mixer,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
